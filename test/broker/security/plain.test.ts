// SASL/PLAIN (RFC 4616) on the broker: `[authzid] NUL user NUL password` checked against the
// JAAS users; every refusal is a SaslAuthenticationError that does not reveal whether the user exists.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parsePlainToken, verifyPlain } from '../../../src/broker/security/plain.ts'
import { SaslAuthenticationError } from '../../../src/broker/security/sasl-errors.ts'

const USERS = new Map([
  ['admin', 'admin-secret'],
  ['alice', 'älice-secret'],
])

const token = (...fields: string[]) => Buffer.from(fields.join('\0'), 'utf8')

function assertRefused(t: Buffer, pattern: RegExp): void {
  assert.throws(
    () => verifyPlain(t, USERS),
    (e) => e instanceof SaslAuthenticationError && e.code === 'SASL_AUTHENTICATION_FAILED' && pattern.test(e.message),
  )
}

test('a good token authenticates its user', () => {
  assert.equal(verifyPlain(token('', 'admin', 'admin-secret'), USERS), 'admin')
  assert.equal(verifyPlain(token('', 'alice', 'älice-secret'), USERS), 'alice')
  assert.deepEqual(parsePlainToken(token('z', 'u', 'p')), { authzid: 'z', username: 'u', password: 'p' })
})

test('wrong password and unknown user fail with the same message', () => {
  const generic = /^Authentication failed: Invalid username or password$/
  assertRefused(token('', 'admin', 'admin-secreT'), generic)
  assertRefused(token('', 'admin', 'admin-secret '), generic)
  assertRefused(token('', 'admin', 'älice-secret'), generic)
  assertRefused(token('', 'mallory', 'admin-secret'), generic)
  assertRefused(token('', 'Admin', 'admin-secret'), generic)
})

test('authzid: empty or the username passes; anything else is refused', () => {
  assert.equal(verifyPlain(token('admin', 'admin', 'admin-secret'), USERS), 'admin')
  assertRefused(token('alice', 'admin', 'admin-secret'), /authorization id must be empty or the username/)
})

test('missing NULs and extra fields are malformed', () => {
  assertRefused(Buffer.alloc(0), /malformed PLAIN token: expected 3 NUL-separated fields, got 1/)
  assertRefused(Buffer.from('admin admin-secret'), /expected 3 NUL-separated fields, got 1/)
  assertRefused(token('admin', 'admin-secret'), /expected 3 NUL-separated fields, got 2/)
  assertRefused(token('', 'admin', 'admin-secret', ''), /got 4/)
  assertRefused(token('', 'admin', 'admin', 'secret'), /got 4/)
})

test('empty username or password is malformed', () => {
  assertRefused(token('', '', 'admin-secret'), /malformed PLAIN token: empty username/)
  assertRefused(token('', 'admin', ''), /malformed PLAIN token: empty password/)
  assertRefused(token('', '', ''), /empty username/)
})

test('tokens over 64 KiB are refused before parsing', () => {
  const users = new Map([['big', 'p'.repeat(64 * 1024 - 5)]])
  const fits = token('', 'big', 'p'.repeat(64 * 1024 - 5))
  assert.equal(fits.length, 64 * 1024)
  assert.equal(verifyPlain(fits, users), 'big')
  const over = token('', 'big', 'p'.repeat(64 * 1024 - 4))
  assert.throws(() => verifyPlain(over, users), /malformed PLAIN token: longer than 65536 bytes/)
})

test('non-UTF-8 is malformed', () => {
  const bad = Buffer.concat([Buffer.from('\0admin\0'), Buffer.from([0xc3, 0x28])])
  assertRefused(bad, /malformed PLAIN token: not valid UTF-8/)
  assertRefused(Buffer.from([0x00, 0xff, 0x00, 0x70]), /not valid UTF-8/)
})
