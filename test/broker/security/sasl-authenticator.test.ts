// The SASL exchange of one connection (src/broker/security/sasl-authenticator.ts), driven step by
// step with an injected clock: which requests pass before, during and after authentication,
// PLAIN and SCRAM logins, bare tokens after SaslHandshake v0, KIP-368 session expiry and
// re-authentication (same mechanism and principal only), and that every failure closes.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ApiKey } from '../../../src/protocol/apis.ts'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import { SaslAuthenticator } from '../../../src/broker/security/sasl-authenticator.ts'
import { ScramClient, type ScramCredential, scramCredential } from '../../../src/broker/security/scram.ts'

const credentials = new Map<string, ScramCredential>([
  ['bob/SCRAM-SHA-256', scramCredential('SCRAM-SHA-256', 'bob-secret')],
  ['bob/SCRAM-SHA-512', scramCredential('SCRAM-SHA-512', 'bob-secret')],
  ['carol/SCRAM-SHA-256', scramCredential('SCRAM-SHA-256', 'carol-secret')],
])

function authenticator(reauthMs = 0) {
  const clock = { now: 1000 }
  const sasl = new SaslAuthenticator({
    mechanisms: ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'],
    plainUsers: new Map([['alice', 'alice-secret']]),
    scramCredential: (user, mechanism) => credentials.get(`${user}/${mechanism}`),
    reauthMs,
    maxUnauthenticatedFrameBytes: 524288,
    now: () => clock.now,
  })
  return { sasl, clock }
}

const plainToken = (user: string, password: string) => Buffer.from(`\0${user}\0${password}`)

/** A whole SCRAM login through SaslAuthenticate v1; returns the last step. */
function scramLogin(
  sasl: SaslAuthenticator,
  mechanism: 'SCRAM-SHA-256' | 'SCRAM-SHA-512',
  user: string,
  password: string,
) {
  assert.equal(sasl.handshake(1, mechanism).response.errorCode, ErrorCode.NONE)
  const client = new ScramClient(mechanism, user, password)
  const first = sasl.authenticate(1, client.first())
  if (first.close !== undefined) return first
  const final = sasl.authenticate(1, client.final(first.response.authBytes))
  if (final.close === undefined) client.verify(final.response.authBytes)
  return final
}

test('before authentication only ApiVersions and SaslHandshake pass; during it only SaslAuthenticate', () => {
  const { sasl } = authenticator()
  assert.equal(sasl.gate(ApiKey.ApiVersions, 'ApiVersions'), undefined)
  assert.equal(sasl.gate(ApiKey.SaslHandshake, 'SaslHandshake'), undefined)
  assert.match(sasl.gate(ApiKey.Metadata, 'Metadata') ?? '', /Metadata request before SASL authentication/)
  assert.match(sasl.gate(ApiKey.SaslAuthenticate, 'SaslAuthenticate') ?? '', /before SASL authentication/)
  sasl.handshake(1, 'PLAIN')
  assert.equal(sasl.gate(ApiKey.SaslAuthenticate, 'SaslAuthenticate'), undefined)
  assert.match(sasl.gate(ApiKey.Produce, 'Produce') ?? '', /during SASL authentication/)
  assert.equal(sasl.principal, undefined)
})

test('PLAIN: the right password authenticates as User:<name>; a wrong one fails and closes', () => {
  const ok = authenticator().sasl
  ok.handshake(1, 'PLAIN')
  const step = ok.authenticate(1, plainToken('alice', 'alice-secret'))
  assert.equal(step.close, undefined)
  assert.equal(step.response.errorCode, ErrorCode.NONE)
  assert.equal(ok.principal, 'User:alice')
  assert.equal(ok.gate(ApiKey.Produce, 'Produce'), undefined)

  const bad = authenticator().sasl
  bad.handshake(1, 'PLAIN')
  const refused = bad.authenticate(1, plainToken('alice', 'wrong'))
  assert.equal(refused.response.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED)
  assert.match(refused.response.errorMessage ?? '', /Invalid username or password/)
  assert.ok(refused.close !== undefined)
  assert.equal(bad.principal, undefined)
})

test('SCRAM-SHA-256 and -512 log in with the stored credential; a wrong password or unknown user fails alike', () => {
  for (const mechanism of ['SCRAM-SHA-256', 'SCRAM-SHA-512'] as const) {
    const { sasl } = authenticator()
    const step = scramLogin(sasl, mechanism, 'bob', 'bob-secret')
    assert.equal(step.close, undefined, mechanism)
    assert.equal(sasl.principal, 'User:bob')
  }
  const wrong = scramLogin(authenticator().sasl, 'SCRAM-SHA-256', 'bob', 'nope')
  const unknown = scramLogin(authenticator().sasl, 'SCRAM-SHA-256', 'mallory', 'x')
  for (const step of [wrong, unknown]) {
    assert.equal(step.response.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED)
    assert.ok(step.close !== undefined)
  }
  assert.equal(wrong.response.errorMessage, unknown.response.errorMessage)
})

test('a mechanism that is not enabled is UNSUPPORTED_SASL_MECHANISM with the enabled list, and closes', () => {
  const { sasl } = authenticator()
  const step = sasl.handshake(1, 'GSSAPI')
  assert.equal(step.response.errorCode, ErrorCode.UNSUPPORTED_SASL_MECHANISM)
  assert.deepEqual(step.response.mechanisms, ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'])
  assert.match(step.close ?? '', /GSSAPI.*is not enabled/)
})

test('after SaslHandshake v0 the tokens come bare (kafka-python); a bad one closes without a reply', () => {
  const { sasl } = authenticator()
  sasl.handshake(0, 'SCRAM-SHA-512')
  assert.equal(sasl.expectsBareToken, true)
  const client = new ScramClient('SCRAM-SHA-512', 'bob', 'bob-secret')
  const first = sasl.bareToken(client.first())
  assert.ok(first.response !== null)
  const final = sasl.bareToken(client.final(first.response))
  assert.ok(final.response !== null)
  client.verify(final.response)
  assert.equal(sasl.expectsBareToken, false)
  assert.equal(sasl.principal, 'User:bob')

  const bad = authenticator().sasl
  bad.handshake(0, 'PLAIN')
  const refused = bad.bareToken(Buffer.from('no NULs here'))
  assert.equal(refused.response, null)
  assert.match(refused.close ?? '', /malformed PLAIN token/)
})

test('KIP-368: the session lifetime is told to v1+ clients; after it, requests close the connection until it re-authenticates', () => {
  const { sasl, clock } = authenticator(60_000)
  const login = scramLogin(sasl, 'SCRAM-SHA-256', 'bob', 'bob-secret')
  assert.equal(login.response.sessionLifetimeMs, 60_000)
  clock.now += 59_999
  assert.equal(sasl.gate(ApiKey.Fetch, 'Fetch'), undefined)
  clock.now += 1
  assert.match(sasl.gate(ApiKey.Fetch, 'Fetch') ?? '', /session of User:bob expired/)
  // Re-authentication is let through, and renews the session.
  assert.equal(sasl.gate(ApiKey.SaslHandshake, 'SaslHandshake'), undefined)
  assert.equal(scramLogin(sasl, 'SCRAM-SHA-256', 'bob', 'bob-secret').close, undefined)
  assert.equal(sasl.gate(ApiKey.Fetch, 'Fetch'), undefined)
  assert.equal(sasl.principal, 'User:bob')
})

test('re-authentication must keep the mechanism and the principal', () => {
  const { sasl } = authenticator(60_000)
  scramLogin(sasl, 'SCRAM-SHA-256', 'bob', 'bob-secret')
  const otherMechanism = sasl.handshake(1, 'SCRAM-SHA-512')
  assert.equal(otherMechanism.response.errorCode, ErrorCode.ILLEGAL_SASL_STATE)
  assert.match(otherMechanism.close ?? '', /keep the mechanism SCRAM-SHA-256/)

  const again = authenticator(60_000).sasl
  scramLogin(again, 'SCRAM-SHA-256', 'bob', 'bob-secret')
  const asCarol = scramLogin(again, 'SCRAM-SHA-256', 'carol', 'carol-secret')
  assert.equal(asCarol.response.errorCode, ErrorCode.SASL_AUTHENTICATION_FAILED)
  assert.match(asCarol.response.errorMessage ?? '', /keeps its principal/)
  assert.ok(asCarol.close !== undefined)
})

test('without connections.max.reauth.ms sessions do not expire and their lifetime is 0', () => {
  const { sasl, clock } = authenticator(0)
  assert.equal(scramLogin(sasl, 'SCRAM-SHA-512', 'bob', 'bob-secret').response.sessionLifetimeMs, 0)
  clock.now += 365 * 24 * 3600_000
  assert.equal(sasl.gate(ApiKey.Produce, 'Produce'), undefined)
})
