// The listeners setting in Kafka's syntax (src/broker/listeners.ts) and the per-listener security
// settings (listener.name.<name>.<key>, BrokerConfig.forListener): what is accepted, what each
// listener gets, and the clear error for each mistake.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { BrokerConfig, ConfigError } from '../../../src/broker/config.ts'
import { advertisedEndpoint, parseListeners } from '../../../src/broker/listeners.ts'
import { aclHost } from '../../../src/broker/server.ts'

const DEFAULT_MAP = new BrokerConfig().get('listener.security.protocol.map')

function parse(listeners: string, advertisedListeners = '', protocolMap = DEFAULT_MAP) {
  return parseListeners({ listeners, advertisedListeners, protocolMap }, '127.0.0.1', 9092)
}

test('without listeners the broker has one PLAINTEXT listener on --host and --port', () => {
  assert.deepEqual(parse(''), [
    { name: 'PLAINTEXT', protocol: 'PLAINTEXT', host: '127.0.0.1', port: 9092, advertised: undefined },
  ])
})

test("Kafka's syntax: several listeners, an empty host (the broker's host), IPv6, custom names mapped to a protocol", () => {
  const listeners = parse(
    'PLAINTEXT://:9092,SSL://0.0.0.0:9093,INTERNAL://[::1]:9094,external://localhost:0',
    'SSL://broker.example:19093',
    `${DEFAULT_MAP},INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL`,
  )
  assert.deepEqual(
    listeners.map((l) => [l.name, l.protocol, l.host, l.port]),
    [
      ['PLAINTEXT', 'PLAINTEXT', '127.0.0.1', 9092],
      ['SSL', 'SSL', '0.0.0.0', 9093],
      ['INTERNAL', 'SASL_PLAINTEXT', '::1', 9094],
      ['EXTERNAL', 'SASL_SSL', 'localhost', 0],
    ],
  )
  // What a client of each listener is told.
  assert.deepEqual(advertisedEndpoint(listeners[1], 9093, ''), { host: 'broker.example', port: 19093 })
  assert.deepEqual(advertisedEndpoint(listeners[0], 9092, ''), { host: '127.0.0.1', port: 9092 })
  assert.deepEqual(advertisedEndpoint(listeners[3], 40001, ''), { host: 'localhost', port: 40001 })
  // A wildcard listener is advertised as localhost, or as advertised.host.name.
  const wildcard = parse('PLAINTEXT://0.0.0.0:9092')[0]
  assert.deepEqual(advertisedEndpoint(wildcard, 9092, ''), { host: 'localhost', port: 9092 })
  assert.deepEqual(advertisedEndpoint(wildcard, 9092, 'kafka.example'), { host: 'kafka.example', port: 9092 })
})

test('each listener mistake is a ConfigError naming the setting', () => {
  const refused: [string, string, string, RegExp][] = [
    ['PLAINTEXT:9092', '', DEFAULT_MAP, /listeners: "PLAINTEXT:9092" is not NAME:\/\/host:port/],
    ['PLAINTEXT://:99999', '', DEFAULT_MAP, /port 99999 of PLAINTEXT is not a port number/],
    ['PLAINTEXT://:9092,PLAINTEXT://:9093', '', DEFAULT_MAP, /names PLAINTEXT twice/],
    ['PLAINTEXT://:9092,SSL://:9092', '', DEFAULT_MAP, /use port 9092 twice/],
    ['CLIENT://:9092', '', DEFAULT_MAP, /listener CLIENT has no security protocol: add CLIENT:/],
    ['PLAINTEXT://:9092', 'SSL://host:9093', DEFAULT_MAP, /advertised.listeners names SSL, which is not in listeners/],
    ['PLAINTEXT://:9092', 'PLAINTEXT://:9092', DEFAULT_MAP, /PLAINTEXT needs a host/],
    ['CLIENT://:9092', '', 'CLIENT:KERBEROS', /"CLIENT:KERBEROS" is not NAME:PROTOCOL/],
  ]
  for (const [listeners, advertised, map, message] of refused)
    assert.throws(
      () => parse(listeners, advertised, map),
      (e: unknown) => e instanceof ConfigError && message.test(e.message),
      listeners,
    )
})

test('security settings per listener override the broker-wide ones; unknown per-listener keys are refused', () => {
  const config = new BrokerConfig({
    'ssl.client.auth': 'none',
    'listener.name.internal.ssl.client.auth': 'required',
    'sasl.jaas.config': 'global',
    'listener.name.external.sasl.jaas.config': 'external',
    'listener.name.external.plain.sasl.jaas.config': 'external plain',
    'listener.name.external.connections.max.reauth.ms': '60000',
  })
  assert.equal(config.forListener('INTERNAL', 'ssl.client.auth'), 'required')
  assert.equal(config.forListener('EXTERNAL', 'ssl.client.auth'), 'none')
  assert.equal(config.forListener('EXTERNAL', 'sasl.jaas.config', 'PLAIN'), 'external plain')
  assert.equal(config.forListener('EXTERNAL', 'sasl.jaas.config', 'SCRAM-SHA-256'), 'external')
  assert.equal(config.forListener('INTERNAL', 'sasl.jaas.config', 'PLAIN'), 'global')
  assert.equal(config.forListener('EXTERNAL', 'connections.max.reauth.ms'), '60000')
  assert.throws(() => new BrokerConfig({ 'listener.name.x.log.retention.ms': '1' }), /unknown broker config/)
  assert.throws(
    () => new BrokerConfig({ 'listener.name.x.ssl.client.auth': 'maybe' }),
    /must be one of none, requested, required/,
  )
  assert.throws(
    () => new BrokerConfig({ 'sasl.enabled.mechanisms': 'GSSAPI' }),
    /must list PLAIN, SCRAM-SHA-256, SCRAM-SHA-512/,
  )
})

test('DescribeConfigs never shows a password setting', () => {
  const entries = new BrokerConfig({ 'ssl.key.password': 'secret', 'sasl.jaas.config': 'x user_a="b";' }).entries()
  for (const name of ['ssl.key.password', 'sasl.jaas.config', 'ssl.keystore.key']) {
    const e = entries.find((x) => x.name === name)
    assert.ok(e !== undefined, name)
    assert.equal(e.value, null, name)
    assert.equal(e.type, 'PASSWORD')
  }
  assert.equal(entries.find((x) => x.name === 'ssl.client.auth')?.value, 'none')
})

test('ACLs see an IPv4 client of a listener on :: by its IPv4 address, others as they are', () => {
  assert.equal(aclHost('::ffff:127.0.0.1'), '127.0.0.1')
  assert.equal(aclHost('::FFFF:10.1.2.3'), '10.1.2.3')
  assert.equal(aclHost('127.0.0.1'), '127.0.0.1')
  assert.equal(aclHost('::1'), '::1')
  assert.equal(aclHost('::ffff:abcd'), '::ffff:abcd')
  assert.equal(aclHost(undefined), '')
})
