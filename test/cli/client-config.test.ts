// `--command-config`: a Kafka client properties file in Java's or librdkafka's spelling, turned
// into TLS and SASL options (src/cli/client-config.ts), and a clear error for each mistake.
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ClientConfigError, clientSecurity, parseProperties, readClientConfig } from '../../src/cli/client-config.ts'
import { removeDir, tempDir } from '../helpers/broker-process.ts'

test("Java's spelling: SASL_SSL, SCRAM from sasl.jaas.config, a PEM truststore", () => {
  const dir = tempDir('client-config')
  try {
    writeFileSync(join(dir, 'ca.pem'), 'PEM TEXT')
    const file = join(dir, 'admin.properties')
    writeFileSync(
      file,
      [
        '# an admin client',
        'security.protocol=SASL_SSL',
        'sasl.mechanism: SCRAM-SHA-512',
        'sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="p\\"w";',
        `ssl.truststore.location=${join(dir, 'ca.pem')}`,
        '',
      ].join('\n'),
    )
    const security = readClientConfig(file)
    assert.deepEqual(security.sasl, { mechanism: 'SCRAM-SHA-512', username: 'admin', password: 'p"w' })
    assert.equal(security.tls?.ca, 'PEM TEXT')
  } finally {
    removeDir(dir)
  }
})

test("librdkafka's spelling, PLAINTEXT by default, and host name checking turned off by an empty algorithm", () => {
  const rdkafka = clientSecurity(
    parseProperties(
      'security.protocol=sasl_plaintext\nsasl.mechanisms=PLAIN\nsasl.username=alice\nsasl.password=secret\n',
    ),
  )
  assert.deepEqual(rdkafka, { sasl: { mechanism: 'PLAIN', username: 'alice', password: 'secret' } })
  assert.deepEqual(clientSecurity(new Map()), {})
  assert.deepEqual(readClientConfig(undefined), {})
  const noCheck = clientSecurity(parseProperties('security.protocol=SSL\nssl.endpoint.identification.algorithm=\n'))
  assert.equal(typeof noCheck.tls?.checkServerIdentity, 'function')
})

test('each mistake is a ClientConfigError that says what to fix', () => {
  const refused: [string, RegExp][] = [
    ['security.protocol=KERBEROS', /security.protocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL/],
    [
      'security.protocol=SASL_SSL\nsasl.mechanism=GSSAPI',
      /sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512/,
    ],
    ['security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN', /needs a username and password/],
    [
      'security.protocol=SSL\nssl.ca.location=/nonexistent/ca.pem',
      /ssl.ca.location: cannot read \/nonexistent\/ca.pem/,
    ],
    ['just words', /not key=value: just words/],
  ]
  for (const [text, message] of refused)
    assert.throws(
      () => clientSecurity(parseProperties(text)),
      (e: unknown) => e instanceof ClientConfigError && message.test(e.message),
      text,
    )
  assert.throws(() => readClientConfig('/nonexistent/admin.properties'), /--command-config: cannot read/)
})
