// Kafka's sasl.jaas.config syntax: one login module, a control flag, key=value options and a
// trailing `;`; a bad config fails with a JaasConfigError naming where.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { JaasConfigError, parseJaasConfig, plainUsers } from '../../../src/broker/security/jaas.ts'

const EXAMPLE =
  'org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";'

function assertInvalid(text: string, pattern: RegExp, position?: number): void {
  assert.throws(
    () => parseJaasConfig(text),
    (e) =>
      e instanceof JaasConfigError &&
      e.code === 'INVALID_CONFIG' &&
      pattern.test(e.message) &&
      (position === undefined || (e.position === position && e.message.includes(`at position ${position}`))),
  )
}

test("Kafka's PlainLoginModule example", () => {
  const config = parseJaasConfig(EXAMPLE)
  assert.deepEqual(config, {
    loginModule: 'org.apache.kafka.common.security.plain.PlainLoginModule',
    flag: 'required',
    options: {
      username: 'admin',
      password: 'admin-secret',
      user_admin: 'admin-secret',
      user_alice: 'alice-secret',
    },
  })
  assert.deepEqual(
    plainUsers(config.options),
    new Map([
      ['admin', 'admin-secret'],
      ['alice', 'alice-secret'],
    ]),
  )
})

test('whitespace and newlines anywhere between tokens, spaces around =, flag case', () => {
  const config = parseJaasConfig('\n  a.b.Module   REQUIRED\n\tkey = "v"\n  other=\t"w" \n ;  \n')
  assert.equal(config.flag, 'required')
  assert.deepEqual(config.options, { key: 'v', other: 'w' })
  assert.deepEqual(parseJaasConfig('M optional;'), { loginModule: 'M', flag: 'optional', options: {} })
})

test('quoted values: backslash escapes, and ; = spaces inside quotes', () => {
  const { options } = parseJaasConfig(String.raw`M required a="x\"y" b="c:\\dir" c="p;w = d" d="" e="\q\n";`)
  assert.deepEqual(options, { a: 'x"y', b: 'c:\\dir', c: 'p;w = d', d: '', e: 'q\n' })
})

test('bare values', () => {
  const { options } = parseJaasConfig('M sufficient serviceName=kafka debug=true user_bob=b0b-pw;')
  assert.deepEqual(options, { serviceName: 'kafka', debug: 'true', user_bob: 'b0b-pw' })
  assert.deepEqual(plainUsers(options), new Map([['bob', 'b0b-pw']]))
})

test('plainUsers ignores other options and a bare user_', () => {
  assert.deepEqual(plainUsers({ username: 'a', user_: 'x', users: 'y', user_c: '' }), new Map([['c', '']]))
})

test('missing ; is refused', () => {
  assertInvalid('M required a="b"', /missing ";"/, 17)
  assertInvalid('M required', /missing ";"/, 11)
})

test('unterminated quote names where it starts', () => {
  assertInvalid('M required a="b;', /unterminated quoted value/, 14)
  assertInvalid('M required a="b\\";', /unterminated quoted value/, 14)
})

test('two login modules are refused', () => {
  assertInvalid(`${EXAMPLE} ${EXAMPLE}`, /only one login module/, EXAMPLE.length + 2)
})

test('other syntax errors', () => {
  assertInvalid('', /expected a login module class name, found end of text/, 1)
  assertInvalid('  ;', /expected a login module class name/, 3)
  assertInvalid('1M required;', /not a login module class name/, 1)
  assertInvalid('M;', /expected a control flag/, 2)
  assertInvalid('M mandatory;', /"mandatory" is not a control flag/, 3)
  assertInvalid('M required a;', /expected "=" after option "a"/, 13)
  assertInvalid('M required a=;', /expected a value for option "a"/, 14)
  assertInvalid('M required =b;', /expected an option name/, 12)
  assertInvalid('M required a/b=c;', /"a\/b" is not an option name/, 12)
  assertInvalid('M required a=1 a=2;', /duplicate option "a"/, 16)
})
