// SCRAM-SHA-256/512 server and client: RFC 7677's worked example byte for byte, round trips, and
// every way a client message can be wrong, each a SaslAuthenticationError that ends the exchange.
import assert from 'node:assert/strict'
import { createHash, createHmac, pbkdf2Sync } from 'node:crypto'
import { test } from 'node:test'
import { SaslAuthenticationError, UnacceptableCredentialError } from '../../../src/broker/security/sasl-errors.ts'
import {
  SCRAM_MECHANISMS,
  type ScramCredential,
  type ScramMechanism,
  ScramClient,
  ScramServer,
  credentialFromSaltedPassword,
  scramCredential,
  scramMechanismById,
  scramMechanismId,
} from '../../../src/broker/security/scram.ts'

// RFC 7677 §3.
const RFC = {
  clientNonce: 'rOprNGfwEbeRWgbNEkqO',
  clientFirst: 'n,,n=user,r=rOprNGfwEbeRWgbNEkqO',
  serverNonce: '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  nonce: 'rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0',
  salt: Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'),
  serverFirst: 'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
  clientFinal:
    'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
  serverFinal: 'v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=',
}
const RFC_CREDENTIAL = scramCredential('SCRAM-SHA-256', 'pencil', 4096, RFC.salt)

const text = (b: Buffer) => b.toString('utf8')
const bytes = (s: string) => Buffer.from(s, 'utf8')

function lookupOf(credentials: Record<string, ScramCredential>): (u: string) => ScramCredential | undefined {
  return (u) => (Object.hasOwn(credentials, u) ? credentials[u] : undefined)
}

function rfcServer(): ScramServer {
  return new ScramServer('SCRAM-SHA-256', lookupOf({ user: RFC_CREDENTIAL }), () => RFC.serverNonce)
}

/** A server that has already answered the RFC client-first. */
function rfcServerAtFinal(): ScramServer {
  const server = rfcServer()
  server.step(bytes(RFC.clientFirst))
  return server
}

/** The step fails with a SaslAuthenticationError matching `pattern`, and the exchange is over. */
function assertRefused(server: ScramServer, message: string | Buffer, pattern: RegExp): void {
  const buf = typeof message === 'string' ? bytes(message) : message
  assert.throws(
    () => server.step(buf),
    (e) => e instanceof SaslAuthenticationError && e.code === 'SASL_AUTHENTICATION_FAILED' && pattern.test(e.message),
  )
  assert.equal(server.complete, false)
  assert.throws(() => server.step(bytes(RFC.clientFinal)), /already failed/)
}

/** An independent client-final (RFC 5802 §3), for GS2 headers ScramClient never sends. */
function clientFinalFor(gs2Header: string, clientFirstBare: string, serverFirst: string, password: string): string {
  const salt = Buffer.from(/,s=([^,]+)/.exec(serverFirst)?.[1] ?? '', 'base64')
  const nonce = /^r=([^,]+)/.exec(serverFirst)?.[1] ?? ''
  const salted = pbkdf2Sync(password, salt, 4096, 32, 'sha256')
  const clientKey = createHmac('sha256', salted).update('Client Key').digest()
  const storedKey = createHash('sha256').update(clientKey).digest()
  const withoutProof = `c=${Buffer.from(gs2Header).toString('base64')},r=${nonce}`
  const signature = createHmac('sha256', storedKey).update(`${clientFirstBare},${serverFirst},${withoutProof}`).digest()
  return `${withoutProof},p=${Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString('base64')}`
}

/** Runs a full exchange for a hand-written client-first against the RFC credential. */
function exchange(gs2Header: string, clientFirstBare: string): ScramServer {
  const server = rfcServer()
  const serverFirst = text(server.step(bytes(gs2Header + clientFirstBare)))
  server.step(bytes(clientFinalFor(gs2Header, clientFirstBare, serverFirst, 'pencil')))
  return server
}

test('RFC 7677 example: the server answers with the RFC bytes', () => {
  const server = rfcServer()
  assert.equal(text(server.step(bytes(RFC.clientFirst))), RFC.serverFirst)
  assert.equal(server.complete, false)
  assert.throws(() => server.username, /not complete/)
  assert.equal(text(server.step(bytes(RFC.clientFinal))), RFC.serverFinal)
  assert.equal(server.complete, true)
  assert.equal(server.username, 'user')
  assert.equal(server.tokenAuthenticated, false)
})

test('RFC 7677 example: the client sends the RFC bytes and accepts the server', () => {
  const client = new ScramClient('SCRAM-SHA-256', 'user', 'pencil', RFC.clientNonce)
  assert.equal(text(client.first()), RFC.clientFirst)
  assert.equal(text(client.final(bytes(RFC.serverFirst))), RFC.clientFinal)
  client.verify(bytes(RFC.serverFinal))
})

function roundTrip(mechanism: ScramMechanism, user: string, password: string, credential: ScramCredential): void {
  const server = new ScramServer(mechanism, lookupOf({ [user]: credential }))
  const client = new ScramClient(mechanism, user, password)
  const serverFirst = server.step(client.first())
  const serverFinal = server.step(client.final(serverFirst))
  client.verify(serverFinal)
  assert.equal(server.complete, true)
  assert.equal(server.username, user)
}

for (const mechanism of SCRAM_MECHANISMS) {
  test(`${mechanism}: round trip with ScramClient, a username needing escapes and a non-ASCII password`, () => {
    roundTrip(mechanism, 'al,ice=bob', 'sécret ✓', scramCredential(mechanism, 'sécret ✓', 8192))
    assert.match(text(new ScramClient(mechanism, 'al,ice=bob', 'x').first()), /^n,,n=al=2Cice=3Dbob,r=[^,]+$/)
  })
}

test('SCRAM-SHA-512: server-final is a 64-byte signature', () => {
  const server = new ScramServer('SCRAM-SHA-512', lookupOf({ u: scramCredential('SCRAM-SHA-512', 'pw') }))
  const client = new ScramClient('SCRAM-SHA-512', 'u', 'pw')
  const serverFinal = text(server.step(client.final(server.step(client.first()))))
  assert.equal(Buffer.from(serverFinal.slice(2), 'base64').length, 64)
})

test('wrong password: refused at client-final with the generic message', () => {
  const server = new ScramServer('SCRAM-SHA-256', lookupOf({ user: RFC_CREDENTIAL }))
  const client = new ScramClient('SCRAM-SHA-256', 'user', 'pencil!')
  const serverFirst = server.step(client.first())
  assertRefused(server, client.final(serverFirst), /^Authentication failed: Invalid username or password$/)
})

test('unknown user: refused at client-first with the same message as a wrong password', () => {
  assertRefused(rfcServer(), 'n,,n=nobody,r=abc', /^Authentication failed: Invalid username or password$/)
})

test('a credential of the other mechanism is not used', () => {
  const server = new ScramServer('SCRAM-SHA-512', lookupOf({ user: RFC_CREDENTIAL }))
  assertRefused(server, RFC.clientFirst, /Invalid username or password/)
})

test('tampered nonce in the client-final is refused', () => {
  const tampered = RFC.clientFinal.replace('k0,p=', 'k1,p=')
  assertRefused(rfcServerAtFinal(), tampered, /nonce \(r=\) does not match/)
  assertRefused(rfcServerAtFinal(), RFC.clientFinal.replace(RFC.serverNonce, ''), /nonce/)
})

test("librdkafka < 2.6.1's client-final (its own nonce again in front of the combined one) is accepted; any other prefix is not", () => {
  // What kcat and confluent-kafka built on Debian's librdkafka 2.0.2 send; Kafka 3.x accepts it.
  // Its proof signs the message as sent, over the real server-first.
  const finalWithNonce = (nonce: string) => {
    const salted = pbkdf2Sync('pencil', RFC.salt, 4096, 32, 'sha256')
    const clientKey = createHmac('sha256', salted).update('Client Key').digest()
    const storedKey = createHash('sha256').update(clientKey).digest()
    const withoutProof = `c=biws,r=${nonce}`
    const authMessage = `${RFC.clientFirst.slice(3)},${RFC.serverFirst},${withoutProof}`
    const signature = createHmac('sha256', storedKey).update(authMessage).digest()
    return `${withoutProof},p=${Buffer.from(clientKey.map((b, i) => b ^ signature[i])).toString('base64')}`
  }
  assert.equal(finalWithNonce(RFC.nonce), RFC.clientFinal)
  const server = rfcServerAtFinal()
  assert.match(text(server.step(bytes(finalWithNonce(RFC.clientNonce + RFC.nonce)))), /^v=/)
  assert.equal(server.complete, true)
  assertRefused(rfcServerAtFinal(), finalWithNonce(`xx${RFC.nonce}`), /nonce \(r=\) does not match/)
})

test('a replayed client-final is refused: by a new exchange (new server nonce), and after completion', () => {
  const fresh = new ScramServer('SCRAM-SHA-256', lookupOf({ user: RFC_CREDENTIAL }))
  assert.ok(text(fresh.step(bytes(RFC.clientFirst))).startsWith(`r=${RFC.clientNonce}`))
  assertRefused(fresh, RFC.clientFinal, /nonce/)
  const done = rfcServerAtFinal()
  done.step(bytes(RFC.clientFinal))
  assert.throws(
    () => done.step(bytes(RFC.clientFinal)),
    (e) => e instanceof SaslAuthenticationError,
  )
  assert.equal(done.complete, true)
})

test('GS2 header: "y" and an authzid equal to the username are accepted; c= must echo the header', () => {
  assert.equal(exchange('y,,', 'n=user,r=abc').username, 'user')
  assert.equal(exchange('n,a=user,', 'n=user,r=abc').username, 'user')
  assertRefused(rfcServerAtFinal(), RFC.clientFinal.replace('c=biws', 'c=eSws'), /channel binding \(c=\)/)
})

test('channel binding "p" and unknown GS2 flags are refused', () => {
  assertRefused(rfcServer(), 'p=tls-unique,,n=user,r=abc', /channel binding is not supported/)
  assertRefused(rfcServer(), 'x,,n=user,r=abc', /malformed SCRAM client-first message: invalid GS2/)
})

test('an authzid other than the username is refused', () => {
  assertRefused(rfcServer(), 'n,a=admin,n=user,r=abc', /authorization id must be empty or the username/)
})

test('saslname escapes: only =2C and =3D', () => {
  for (const name of ['us=2Der', 'user=', 'us=2cer', 'us=3', '=']) {
    assertRefused(rfcServer(), `n,,n=${name},r=abc`, /malformed SCRAM client-first message: invalid "=" escape/)
  }
  assertRefused(rfcServer(), 'n,a=us=x,n=user,r=abc', /invalid "=" escape/)
  const escaped = new ScramServer('SCRAM-SHA-256', lookupOf({ 'a,b=c': RFC_CREDENTIAL }), () => 'S')
  assert.equal(text(escaped.step(bytes('n,,n=a=2Cb=3Dc,r=abc'))).slice(0, 8), 'r=abcS,s')
})

test('truncated and malformed client-first messages', () => {
  const cases: [string, RegExp][] = [
    ['', /expected a GS2 header, username and nonce/],
    ['n,,', /expected a GS2 header/],
    ['n,,n=user', /expected a GS2 header/],
    ['n,,n=user,r=', /nonce must be printable/],
    ['n,,n=,r=abc', /empty name/],
    ['n,,r=abc,n=user', /expected "n="/],
    ['n,,n=user,x=abc', /expected "r="/],
    ['n,,n=user,r=a b', /nonce must be printable/],
    ['n,,n=user,r=abc,=x', /invalid extension/],
    ['n,,n=user,r=abc,e=1,e=2', /duplicate extension/],
    ['n,b=user,n=user,r=abc', /expected "a="/],
    ['n,,m=must,n=user,r=abc', /mandatory extensions are not supported/],
    ['n,,n=user,r=abc,tokenauth=true', /delegation token authentication is not supported/],
    ['n,,n=us\0er,r=abc', /contains NUL/],
  ]
  for (const [message, pattern] of cases) assertRefused(rfcServer(), message, pattern)
  assertRefused(rfcServer(), Buffer.from([0x6e, 0x2c, 0x2c, 0x6e, 0x3d, 0xff, 0x2c, 0x72, 0x3d, 0x61]), /UTF-8/)
})

test('unknown client-first extensions are ignored', () => {
  assert.equal(exchange('n,,', 'n=user,r=abc,tokenauth=false,x=1').username, 'user')
})

test('truncated and malformed client-final messages', () => {
  const proof = RFC.clientFinal.slice(RFC.clientFinal.indexOf(',p=') + 3)
  const cases: [string, RegExp][] = [
    ['', /malformed SCRAM client-final message: expected channel binding, nonce and proof/],
    ['c=biws', /expected channel binding/],
    [`c=biws,r=${RFC.nonce}`, /expected channel binding/],
    [`c=biws,r=${RFC.nonce},p=`, /proof has the wrong length/],
    [`c=biws,r=${RFC.nonce},p=${proof.slice(0, 21)}`, /proof is not valid base64/],
    [`c=biws,r=${RFC.nonce},p=${proof.slice(0, -4)}`, /proof has the wrong length/],
    [`c=biws,r=${RFC.nonce},p=${proof.replace('=', '')}`, /proof is not valid base64/],
    [`c=biws,r=${RFC.nonce},p=${proof.replace('Q=', 'R=')}`, /proof is not valid base64/],
    [`r=${RFC.nonce},c=biws,p=${proof}`, /expected "c="/],
    [`c=biws,n=${RFC.nonce},p=${proof}`, /expected "r="/],
    [`c=biws,r=${RFC.nonce},p=${proof},x=1`, /expected "p="/],
  ]
  for (const [message, pattern] of cases) assertRefused(rfcServerAtFinal(), message, pattern)
})

test('client-final extensions before the proof are part of the signed message', () => {
  const withExtension = RFC.clientFinal.replace(',p=', ',x=1,p=')
  assertRefused(rfcServerAtFinal(), withExtension, /Invalid username or password/)
})

test('messages over 64 KiB are refused at either step', () => {
  const big = bytes(`n,,n=user,r=${'a'.repeat(64 * 1024)}`)
  assertRefused(rfcServer(), big, /client-first message: longer than 65536 bytes/)
  assertRefused(rfcServerAtFinal(), bytes(`${RFC.clientFinal},${'x'.repeat(64 * 1024)}`), /longer than 65536/)
  const justFits = bytes(`n,,n=user,r=${'a'.repeat(64 * 1024 - 12)}`)
  assert.equal(justFits.length, 64 * 1024)
  rfcServer().step(justFits)
})

test('steps out of order: after completion, after failure, and the client side', () => {
  const server = rfcServerAtFinal()
  server.step(bytes(RFC.clientFinal))
  assert.throws(() => server.step(bytes(RFC.clientFirst)), /already complete/)
  const failed = rfcServer()
  assert.throws(() => failed.step(bytes(RFC.clientFinal)), SaslAuthenticationError)
  assert.throws(() => failed.step(bytes(RFC.clientFirst)), /already failed/)
  const client = new ScramClient('SCRAM-SHA-256', 'user', 'pencil')
  assert.throws(() => client.final(bytes(RFC.serverFirst)), /out of order/)
  assert.throws(() => client.verify(bytes(RFC.serverFinal)), /out of order/)
  client.first()
  assert.throws(() => client.first(), /out of order/)
})

test('the client refuses a server that does not extend its nonce, a bad signature, or extreme iterations', () => {
  const fresh = () => {
    const c = new ScramClient('SCRAM-SHA-256', 'user', 'pencil', RFC.clientNonce)
    c.first()
    return c
  }
  assert.throws(() => fresh().final(bytes('r=other,s=c2FsdA==,i=4096')), /does not extend/)
  assert.throws(() => fresh().final(bytes(`r=${RFC.clientNonce},s=c2FsdA==,i=4096`)), /does not extend/)
  assert.throws(() => fresh().final(bytes(`r=${RFC.nonce},s=c2FsdA==,i=1`)), /iterations/)
  assert.throws(() => fresh().final(bytes(`r=${RFC.nonce},s=c2FsdA==,i=1000000`)), /iterations/)
  assert.throws(() => fresh().final(bytes(`r=${RFC.nonce},s=,i=4096`)), /empty salt/)
  const client = fresh()
  client.final(bytes(RFC.serverFirst))
  assert.throws(() => client.verify(bytes('v=AAAA')), /server signature does not match/)
  const refused = fresh()
  refused.final(bytes(RFC.serverFirst))
  assert.throws(() => refused.verify(bytes('e=invalid-proof')), /server refused: invalid-proof/)
})

test('credentialFromSaltedPassword matches scramCredential for the same salt and iterations', () => {
  for (const mechanism of SCRAM_MECHANISMS) {
    const hash = mechanism === 'SCRAM-SHA-256' ? 'sha256' : 'sha512'
    const length = mechanism === 'SCRAM-SHA-256' ? 32 : 64
    const salted = pbkdf2Sync('pencil', RFC.salt, 4096, length, hash)
    assert.deepEqual(credentialFromSaltedPassword(mechanism, RFC.salt, salted, 4096), {
      ...scramCredential(mechanism, 'pencil', 4096, RFC.salt),
    })
  }
})

test('credentials: iterations within Kafka bounds, salt and salted password non-empty', () => {
  const refused = (fn: () => unknown) =>
    assert.throws(fn, (e) => e instanceof UnacceptableCredentialError && e.code === 'UNACCEPTABLE_CREDENTIAL')
  refused(() => scramCredential('SCRAM-SHA-256', 'pw', 4095))
  refused(() => scramCredential('SCRAM-SHA-256', 'pw', 16385))
  refused(() => scramCredential('SCRAM-SHA-256', 'pw', 4096.5))
  refused(() => scramCredential('SCRAM-SHA-256', 'pw', 4096, Buffer.alloc(0)))
  refused(() => credentialFromSaltedPassword('SCRAM-SHA-512', RFC.salt, Buffer.alloc(0), 4096))
  assert.equal(scramCredential('SCRAM-SHA-512', 'pw', 16384).iterations, 16384)
  assert.equal(scramCredential('SCRAM-SHA-256', 'pw').salt.length, 32)
})

test("Kafka's mechanism type ids", () => {
  assert.equal(scramMechanismId('SCRAM-SHA-256'), 1)
  assert.equal(scramMechanismId('SCRAM-SHA-512'), 2)
  assert.equal(scramMechanismById(1), 'SCRAM-SHA-256')
  assert.equal(scramMechanismById(2), 'SCRAM-SHA-512')
  assert.equal(scramMechanismById(0), undefined)
  assert.equal(scramMechanismById(3), undefined)
})
