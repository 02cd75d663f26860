// SASL/PLAIN (RFC 4616), server side: the client sends `[authzid] NUL authcid NUL passwd` in one
// message and the broker checks the password against the users configured in its JAAS config
// (`user_<name>="<password>"`), as Kafka's PlainSaslServer does. Pure: no sockets, no state.
import { createHash, timingSafeEqual } from 'node:crypto'
import { INVALID_CREDENTIALS, SaslAuthenticationError } from './sasl-errors.ts'

export interface PlainToken {
  authzid: string
  username: string
  password: string
}

/** Far above any real token; bounds the work a client can make the broker do. */
const MAX_TOKEN_BYTES = 64 * 1024
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function malformed(detail: string): SaslAuthenticationError {
  return new SaslAuthenticationError(`malformed PLAIN token: ${detail}`)
}

export function parsePlainToken(token: Buffer): PlainToken {
  if (token.length > MAX_TOKEN_BYTES) throw malformed(`longer than ${MAX_TOKEN_BYTES} bytes`)
  const fields = decodeUtf8(token).split('\0')
  if (fields.length !== 3) throw malformed(`expected 3 NUL-separated fields, got ${fields.length}`)
  const [authzid, username, password] = fields
  if (username === '') throw malformed('empty username')
  if (password === '') throw malformed('empty password')
  return { authzid, username, password }
}

function decodeUtf8(token: Buffer): string {
  try {
    return UTF8.decode(token)
  } catch {
    throw malformed('not valid UTF-8')
  }
}

/** The authenticated username; throws SaslAuthenticationError for anything else. */
export function verifyPlain(token: Buffer, users: ReadonlyMap<string, string>): string {
  const { authzid, username, password } = parsePlainToken(token)
  // Kafka has no impersonation: the authorization id may only restate the username.
  if (authzid !== '' && authzid !== username)
    throw new SaslAuthenticationError('Authentication failed: authorization id must be empty or the username')
  const expected = users.get(username)
  // An unknown user costs the same compare as a known one, and fails with the same message.
  const ok = passwordsEqual(password, expected ?? '')
  if (expected === undefined || !ok) throw new SaslAuthenticationError(INVALID_CREDENTIALS)
  return username
}

/** Constant time in the passwords' content and length: compares fixed-size digests. */
function passwordsEqual(given: string, expected: string): boolean {
  return timingSafeEqual(sha256(given), sha256(expected))
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}
