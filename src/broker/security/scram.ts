// SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the broker's server side, as Kafka's
// ScramSaslServer behaves on the wire, and a client for tests and Cortado's own clients. Pure:
// no sockets; the caller moves the messages (SaslAuthenticate) and supplies the credentials.
//
// The broker never sees or keeps a password: a credential is salt, iterations, StoredKey and
// ServerKey. The exchange is:
//   client-first  n,,n=<user>,r=<client nonce>
//   server-first  r=<client nonce><server nonce>,s=<salt>,i=<iterations>
//   client-final  c=<base64 GS2 header>,r=<nonce>,p=<proof>
//   server-final  v=<server signature>
// Passwords are used as UTF-8 without SASLprep, as Kafka does, so both sides agree on the bytes.
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from 'node:crypto'
import { INVALID_CREDENTIALS, SaslAuthenticationError, UnacceptableCredentialError } from './sasl-errors.ts'

export type ScramMechanism = 'SCRAM-SHA-256' | 'SCRAM-SHA-512'
export const SCRAM_MECHANISMS: readonly ScramMechanism[] = ['SCRAM-SHA-256', 'SCRAM-SHA-512']

/** Kafka's bounds on iterations (AlterUserScramCredentials); the minimum is also RFC 7677's. */
export const SCRAM_MIN_ITERATIONS = 4096
export const SCRAM_MAX_ITERATIONS = 16384

export interface ScramCredential {
  mechanism: ScramMechanism
  salt: Buffer
  iterations: number
  storedKey: Buffer
  serverKey: Buffer
}

/** The hash behind each mechanism, its output length, and Kafka's ScramMechanism type id. */
const HASHES: Record<ScramMechanism, { hash: string; length: number; id: number }> = {
  'SCRAM-SHA-256': { hash: 'sha256', length: 32, id: 1 },
  'SCRAM-SHA-512': { hash: 'sha512', length: 64, id: 2 },
}

/** Far above any real SCRAM message; bounds the work a client can make the broker do. */
const MAX_MESSAGE_BYTES = 64 * 1024
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** RFC 5802 `printable`: the characters of a nonce. */
const PRINTABLE = /^[\x21-\x2b\x2d-\x7e]+$/
const EXTENSION = /^([A-Za-z]+)=(.+)$/s

export function isScramMechanism(name: string): name is ScramMechanism {
  return Object.hasOwn(HASHES, name)
}

/** Kafka's wire id of a mechanism (DescribeUserScramCredentials, AlterUserScramCredentials). */
export function scramMechanismId(mechanism: ScramMechanism): number {
  return HASHES[mechanism].id
}

export function scramMechanismById(id: number): ScramMechanism | undefined {
  return SCRAM_MECHANISMS.find((m) => HASHES[m].id === id)
}

// ---- credentials ----

/** The credential for a password (SaltedPassword = Hi(password, salt, i), RFC 5802 §3). */
export function scramCredential(
  mechanism: ScramMechanism,
  password: string,
  iterations = SCRAM_MIN_ITERATIONS,
  salt = randomBytes(32),
): ScramCredential {
  checkIterations(iterations)
  if (salt.length === 0) throw new UnacceptableCredentialError('SCRAM salt must not be empty')
  return credentialFromSaltedPassword(
    mechanism,
    salt,
    saltedPassword(mechanism, password, salt, iterations),
    iterations,
  )
}

/** The credential from what AlterUserScramCredentials carries: the client salts the password itself. */
export function credentialFromSaltedPassword(
  mechanism: ScramMechanism,
  salt: Buffer,
  saltedPassword: Buffer,
  iterations: number,
): ScramCredential {
  checkIterations(iterations)
  if (salt.length === 0) throw new UnacceptableCredentialError('SCRAM salt must not be empty')
  if (saltedPassword.length === 0) throw new UnacceptableCredentialError('SCRAM salted password must not be empty')
  const clientKey = hmac(mechanism, saltedPassword, 'Client Key')
  return {
    mechanism,
    salt: Buffer.from(salt),
    iterations,
    storedKey: hash(mechanism, clientKey),
    serverKey: hmac(mechanism, saltedPassword, 'Server Key'),
  }
}

/** Throws UnacceptableCredentialError unless the credential is one this module could have made. */
export function checkScramCredential(credential: ScramCredential): void {
  const { mechanism, salt, iterations, storedKey, serverKey } = credential
  // Credentials also come from files and requests, where the type is only a hope.
  const name: string = mechanism
  if (!isScramMechanism(name)) throw new UnacceptableCredentialError(`unknown SCRAM mechanism ${name}`)
  checkIterations(iterations)
  if (salt.length === 0) throw new UnacceptableCredentialError('SCRAM salt must not be empty')
  const length = HASHES[mechanism].length
  if (storedKey.length !== length || serverKey.length !== length)
    throw new UnacceptableCredentialError(`${mechanism} keys must be ${length} bytes`)
}

function checkIterations(iterations: number): void {
  if (!Number.isInteger(iterations) || iterations < SCRAM_MIN_ITERATIONS || iterations > SCRAM_MAX_ITERATIONS)
    throw new UnacceptableCredentialError(
      `SCRAM iterations must be an integer from ${SCRAM_MIN_ITERATIONS} to ${SCRAM_MAX_ITERATIONS}, got ${iterations}`,
    )
}

// ---- primitives (RFC 5802 §2.2) ----

/** Hi() is PBKDF2 with the mechanism's HMAC and one hash-length block. */
/** SaltedPassword = Hi(password, salt, i) (RFC 5802 §3): what a client sends AlterUserScramCredentials. */
export function saltedPassword(mechanism: ScramMechanism, password: string, salt: Buffer, iterations: number): Buffer {
  const { hash, length } = HASHES[mechanism]
  return pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, length, hash)
}

function hmac(mechanism: ScramMechanism, key: Buffer, data: string): Buffer {
  return createHmac(HASHES[mechanism].hash, key).update(data, 'utf8').digest()
}

function hash(mechanism: ScramMechanism, data: Buffer): Buffer {
  return createHash(HASHES[mechanism].hash).update(data).digest()
}

function xor(a: Buffer, b: Buffer): Buffer {
  return Buffer.from(a.map((byte, i) => byte ^ b[i]))
}

function defaultNonce(): string {
  return randomBytes(32).toString('base64')
}

// ---- message syntax (RFC 5802 §7) ----

const CLIENT_FIRST = 'SCRAM client-first message'
const CLIENT_FINAL = 'SCRAM client-final message'
const SERVER_FIRST = 'SCRAM server-first message'
const SERVER_FINAL = 'SCRAM server-final message'

function malformed(what: string, detail: string): SaslAuthenticationError {
  return new SaslAuthenticationError(`malformed ${what}: ${detail}`)
}

/** The message as text: bounded, valid UTF-8, no NUL (which no SCRAM attribute may hold). */
function decodeMessage(message: Buffer, what: string): string {
  if (message.length > MAX_MESSAGE_BYTES) throw malformed(what, `longer than ${MAX_MESSAGE_BYTES} bytes`)
  let text: string
  try {
    text = UTF8.decode(message)
  } catch {
    throw malformed(what, 'not valid UTF-8')
  }
  if (text.includes('\0')) throw malformed(what, 'contains NUL')
  return text
}

/** The value of `<name>=<value>`; the field must be exactly that attribute. */
function attribute(field: string | undefined, name: string, what: string): string {
  if (field === undefined || !field.startsWith(`${name}=`)) throw malformed(what, `expected "${name}="`)
  return field.slice(name.length + 1)
}

/** saslname: ',' and '=' are sent as =2C and =3D; any other '=' is malformed. */
function decodeSaslname(name: string, what: string): string {
  if (name === '') throw malformed(what, 'empty name')
  if (/=(?!2C|3D)/.test(name)) throw malformed(what, 'invalid "=" escape in name')
  return name.replace(/=(2C|3D)/g, (escape) => (escape === '=2C' ? ',' : '='))
}

function encodeSaslname(name: string): string {
  return name.replace(/[=,]/g, (c) => (c === ',' ? '=2C' : '=3D'))
}

function checkNonce(nonce: string, what: string): void {
  if (!PRINTABLE.test(nonce)) throw malformed(what, 'nonce must be printable ASCII without ","')
}

/** Optional `key=value` extensions; Kafka sends multi-letter keys (tokenauth=true). */
function parseExtensions(fields: string[], what: string): Map<string, string> {
  const extensions = new Map<string, string>()
  for (const field of fields) {
    const m = EXTENSION.exec(field)
    if (m === null) throw malformed(what, 'invalid extension')
    if (extensions.has(m[1])) throw malformed(what, `duplicate extension "${m[1]}"`)
    extensions.set(m[1], m[2])
  }
  return extensions
}

/** Canonical base64 only, so a message has exactly one spelling (Buffer.from alone skips junk). */
function strictBase64(text: string, what: string, field: string): Buffer {
  const bytes = Buffer.from(text, 'base64')
  if (bytes.toString('base64') !== text) throw malformed(what, `${field} is not valid base64`)
  return bytes
}

function base64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64')
}

interface ClientFirst {
  /** `n,,` or `y,,` or with `a=<authzid>`: echoed (base64) in the client-final `c=`. */
  gs2Header: string
  bare: string
  username: string
  nonce: string
}

function parseClientFirst(text: string): ClientFirst {
  const parts = text.split(',')
  if (parts.length < 4) throw malformed(CLIENT_FIRST, 'expected a GS2 header, username and nonce')
  const [cbind, authzField, ...bare] = parts
  checkChannelBindingFlag(cbind)
  const authzid = authzField === '' ? '' : decodeSaslname(attribute(authzField, 'a', CLIENT_FIRST), CLIENT_FIRST)
  if (bare[0].startsWith('m=')) throw new SaslAuthenticationError('SCRAM mandatory extensions are not supported')
  const username = decodeSaslname(attribute(bare[0], 'n', CLIENT_FIRST), CLIENT_FIRST)
  const nonce = attribute(bare[1], 'r', CLIENT_FIRST)
  checkNonce(nonce, CLIENT_FIRST)
  checkClientExtensions(parseExtensions(bare.slice(2), CLIENT_FIRST))
  if (authzid !== '' && authzid !== username)
    throw new SaslAuthenticationError('Authentication failed: authorization id must be empty or the username')
  return { gs2Header: `${cbind},${authzField},`, bare: bare.join(','), username, nonce }
}

/** 'n' (client has no channel binding) and 'y' (client thinks we have none: true) pass; 'p' needs what we lack. */
function checkChannelBindingFlag(flag: string): void {
  if (flag === 'n' || flag === 'y') return
  if (flag.startsWith('p=')) throw new SaslAuthenticationError('SCRAM channel binding is not supported')
  throw malformed(CLIENT_FIRST, 'invalid GS2 channel binding flag')
}

/** Kafka's delegation tokens authenticate through SCRAM with tokenauth=true; Cortado has none. */
function checkClientExtensions(extensions: Map<string, string>): void {
  if (extensions.get('tokenauth')?.toLowerCase() === 'true')
    throw new SaslAuthenticationError('SCRAM delegation token authentication is not supported')
}

interface ClientFinal {
  channelBinding: string
  nonce: string
  withoutProof: string
  proof: Buffer
}

function parseClientFinal(text: string): ClientFinal {
  const parts = text.split(',')
  if (parts.length < 3) throw malformed(CLIENT_FINAL, 'expected channel binding, nonce and proof')
  const channelBinding = attribute(parts[0], 'c', CLIENT_FINAL)
  const nonce = attribute(parts[1], 'r', CLIENT_FINAL)
  parseExtensions(parts.slice(2, -1), CLIENT_FINAL)
  const proof = strictBase64(attribute(parts.at(-1), 'p', CLIENT_FINAL), CLIENT_FINAL, 'proof')
  return { channelBinding, nonce, withoutProof: parts.slice(0, -1).join(','), proof }
}

// ---- server ----

interface Exchange {
  first: ClientFirst
  serverFirst: string
  /** Client nonce + server nonce: the client-final must repeat it. */
  nonce: string
  credential: ScramCredential
}

type ServerState = 'first' | 'final' | 'complete' | 'failed'

/** One authentication: step() with the client-first, then with the client-final. Not reusable. */
export class ScramServer {
  readonly mechanism: ScramMechanism
  private readonly lookup: (username: string) => ScramCredential | undefined
  private readonly nonce: () => string
  private state: ServerState = 'first'
  private exchange: Exchange | undefined

  constructor(
    mechanism: ScramMechanism,
    lookup: (username: string) => ScramCredential | undefined,
    nonce: () => string = defaultNonce,
  ) {
    this.mechanism = mechanism
    this.lookup = lookup
    this.nonce = nonce
  }

  /** The reply to a client message; throws SaslAuthenticationError, after which the exchange is over. */
  step(clientMessage: Buffer): Buffer<ArrayBuffer> {
    if (this.state === 'complete') throw new SaslAuthenticationError('SCRAM exchange is already complete')
    if (this.state === 'failed') throw new SaslAuthenticationError('SCRAM exchange has already failed')
    try {
      return this.state === 'first' ? this.onClientFirst(clientMessage) : this.onClientFinal(clientMessage)
    } catch (e) {
      this.state = 'failed'
      this.exchange = undefined
      throw e
    }
  }

  get complete(): boolean {
    return this.state === 'complete'
  }

  /** The authenticated user; only once complete, so a half-done exchange never yields a principal. */
  get username(): string {
    if (this.state !== 'complete' || this.exchange === undefined)
      throw new SaslAuthenticationError('SCRAM authentication is not complete')
    return this.exchange.first.username
  }

  /** Always false: delegation tokens (tokenauth=true) are refused. */
  get tokenAuthenticated(): boolean {
    return false
  }

  private onClientFirst(message: Buffer): Buffer<ArrayBuffer> {
    const first = parseClientFirst(decodeMessage(message, CLIENT_FIRST))
    const credential = this.lookup(first.username)
    // Kafka fails an unknown user here; the message is the same as for a wrong password.
    if (credential === undefined || credential.mechanism !== this.mechanism)
      throw new SaslAuthenticationError(INVALID_CREDENTIALS)
    const nonce = first.nonce + this.serverNonce()
    const serverFirst = `r=${nonce},s=${credential.salt.toString('base64')},i=${credential.iterations}`
    this.exchange = { first, serverFirst, nonce, credential }
    this.state = 'final'
    return Buffer.from(serverFirst, 'utf8')
  }

  private serverNonce(): string {
    const nonce = this.nonce()
    if (!PRINTABLE.test(nonce)) throw new RangeError('SCRAM server nonce must be printable ASCII without ","')
    return nonce
  }

  private onClientFinal(message: Buffer): Buffer<ArrayBuffer> {
    const exchange = this.exchange
    if (exchange === undefined) throw new SaslAuthenticationError('SCRAM exchange is out of order')
    const final = parseClientFinal(decodeMessage(message, CLIENT_FINAL))
    if (final.channelBinding !== base64(exchange.first.gs2Header))
      throw new SaslAuthenticationError('SCRAM channel binding (c=) does not match the GS2 header')
    // librdkafka before 2.6.1 (Debian's 2.0.2: kcat, confluent-kafka) sends its own nonce again in
    // front of the combined one; Kafka 3.x accepted that (a suffix check). Only that exact form is
    // let through here: the server's nonce is still in it, and the proof is checked over the
    // message as sent.
    const librdkafkaNonce = exchange.first.nonce + exchange.nonce
    if (final.nonce !== exchange.nonce && final.nonce !== librdkafkaNonce)
      throw new SaslAuthenticationError('SCRAM nonce (r=) does not match')
    const authMessage = `${exchange.first.bare},${exchange.serverFirst},${final.withoutProof}`
    verifyProof(exchange.credential, authMessage, final.proof)
    this.state = 'complete'
    const signature = hmac(this.mechanism, exchange.credential.serverKey, authMessage)
    return Buffer.from(`v=${signature.toString('base64')}`, 'utf8')
  }
}

/** ClientKey = proof XOR HMAC(StoredKey, AuthMessage); the client knew the password iff H(ClientKey) = StoredKey. */
function verifyProof(credential: ScramCredential, authMessage: string, proof: Buffer): void {
  const { mechanism, storedKey } = credential
  if (proof.length !== HASHES[mechanism].length) throw malformed(CLIENT_FINAL, 'proof has the wrong length')
  const clientKey = xor(proof, hmac(mechanism, storedKey, authMessage))
  const candidate = hash(mechanism, clientKey)
  if (candidate.length !== storedKey.length || !timingSafeEqual(candidate, storedKey))
    throw new SaslAuthenticationError(INVALID_CREDENTIALS)
}

// ---- client ----

type ClientState = 'first' | 'final' | 'verify' | 'done' | 'failed'

/** The client side, for tests and Cortado's own clients: first(), final(server-first), verify(server-final). */
export class ScramClient {
  readonly mechanism: ScramMechanism
  private readonly username: string
  private readonly password: string
  private readonly nonce: string
  private state: ClientState = 'first'
  private expectedSignature: Buffer | undefined

  constructor(mechanism: ScramMechanism, username: string, password: string, nonce: string = defaultNonce()) {
    if (username === '') throw new SaslAuthenticationError('SCRAM username must not be empty')
    if (!PRINTABLE.test(nonce)) throw new RangeError('SCRAM client nonce must be printable ASCII without ","')
    this.mechanism = mechanism
    this.username = username
    this.password = password
    this.nonce = nonce
  }

  private get bare(): string {
    return `n=${encodeSaslname(this.username)},r=${this.nonce}`
  }

  first(): Buffer<ArrayBuffer> {
    this.advance('first', 'final')
    return Buffer.from(`n,,${this.bare}`, 'utf8')
  }

  /** The client-final for the server-first; refuses a server that did not extend our nonce. */
  final(serverFirst: Buffer): Buffer<ArrayBuffer> {
    this.advance('final', 'verify')
    return this.guard(() => this.buildFinal(serverFirst))
  }

  /** Checks the server's signature: proves the server holds our credential, not just anyone's. */
  verify(serverFinal: Buffer): void {
    this.advance('verify', 'done')
    this.guard(() => this.checkServerFinal(serverFinal))
  }

  private advance(expected: ClientState, next: ClientState): void {
    if (this.state !== expected) throw new SaslAuthenticationError('SCRAM client step out of order')
    this.state = next
  }

  private guard<T>(fn: () => T): T {
    try {
      return fn()
    } catch (e) {
      this.state = 'failed'
      throw e
    }
  }

  private buildFinal(message: Buffer): Buffer<ArrayBuffer> {
    const serverFirst = decodeMessage(message, SERVER_FIRST)
    const { nonce, salt, iterations } = parseServerFirst(serverFirst, this.nonce)
    const salted = saltedPassword(this.mechanism, this.password, salt, iterations)
    const clientKey = hmac(this.mechanism, salted, 'Client Key')
    const withoutProof = `c=${base64('n,,')},r=${nonce}`
    const authMessage = `${this.bare},${serverFirst},${withoutProof}`
    const proof = xor(clientKey, hmac(this.mechanism, hash(this.mechanism, clientKey), authMessage))
    this.expectedSignature = hmac(this.mechanism, hmac(this.mechanism, salted, 'Server Key'), authMessage)
    return Buffer.from(`${withoutProof},p=${proof.toString('base64')}`, 'utf8')
  }

  private checkServerFinal(message: Buffer): void {
    const [field] = decodeMessage(message, SERVER_FINAL).split(',')
    if (field.startsWith('e=')) throw new SaslAuthenticationError(`SCRAM server refused: ${field.slice(2)}`)
    const signature = strictBase64(attribute(field, 'v', SERVER_FINAL), SERVER_FINAL, 'signature')
    const expected = this.expectedSignature
    if (expected === undefined || signature.length !== expected.length || !timingSafeEqual(signature, expected))
      throw new SaslAuthenticationError('SCRAM server signature does not match')
  }
}

function parseServerFirst(text: string, clientNonce: string): { nonce: string; salt: Buffer; iterations: number } {
  const parts = text.split(',')
  if (parts[0].startsWith('m=')) throw new SaslAuthenticationError('SCRAM mandatory extensions are not supported')
  const nonce = attribute(parts[0], 'r', SERVER_FIRST)
  checkNonce(nonce, SERVER_FIRST)
  if (!nonce.startsWith(clientNonce) || nonce.length === clientNonce.length)
    throw new SaslAuthenticationError('SCRAM server nonce does not extend the client nonce')
  const salt = strictBase64(attribute(parts[1], 's', SERVER_FIRST), SERVER_FIRST, 'salt')
  if (salt.length === 0) throw malformed(SERVER_FIRST, 'empty salt')
  const iterationsText = attribute(parts[2], 'i', SERVER_FIRST)
  parseExtensions(parts.slice(3), SERVER_FIRST)
  return { nonce, salt, iterations: serverIterations(iterationsText) }
}

/** Bounded both ways: few iterations weaken the proof, many let a server make us burn CPU. */
function serverIterations(text: string): number {
  const iterations = /^[1-9]\d{0,9}$/.test(text) ? Number(text) : NaN
  if (!(iterations >= SCRAM_MIN_ITERATIONS && iterations <= SCRAM_MAX_ITERATIONS))
    throw malformed(SERVER_FIRST, `iterations must be from ${SCRAM_MIN_ITERATIONS} to ${SCRAM_MAX_ITERATIONS}`)
  return iterations
}
