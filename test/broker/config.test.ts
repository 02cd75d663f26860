import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  BrokerConfig,
  ConfigError,
  parseConfigArgs,
  topicConfigEntries,
  validateTopicConfigs,
} from '../../src/broker/config.ts'

void test('broker configs use Kafka names and defaults, with --config overrides', () => {
  const config = new BrokerConfig({ 'message.max.bytes': '5000', 'log.retention.hours': '2' })
  assert.equal(config.number('message.max.bytes'), 5000)
  assert.equal(config.number('log.retention.ms'), 7_200_000)
  assert.equal(config.number('num.partitions'), 1)
  assert.equal(config.bool('auto.create.topics.enable'), true)
  assert.equal(config.topicDefault('max.message.bytes'), '5000')
  assert.equal(config.topicDefault('retention.ms'), '7200000')
})

void test('unknown keys and malformed values are refused with the key named', () => {
  assert.throws(
    () => new BrokerConfig({ 'no.such.thing': '1' }),
    (e: unknown) => e instanceof ConfigError && e.key === 'no.such.thing',
  )
  assert.throws(() => new BrokerConfig({ 'num.partitions': 'many' }), ConfigError)
  assert.throws(() => new BrokerConfig({ 'num.partitions': '0' }), ConfigError)
  assert.throws(() => new BrokerConfig({ 'auto.create.topics.enable': 'yes' }), ConfigError)
  assert.throws(() => new BrokerConfig({ 'message.max.bytes': '99999999999' }), ConfigError)
  assert.throws(() => new BrokerConfig({ 'cortado.fsync': 'sometimes' }), ConfigError)
  assert.throws(() => validateTopicConfigs({ 'cleanup.policy': 'shred' }), ConfigError)
  validateTopicConfigs({ 'cleanup.policy': 'compact,delete', 'min.cleanable.dirty.ratio': '0.3' })
})

void test('a topic reports its overrides as DYNAMIC_TOPIC and the rest as defaults', () => {
  const entries = topicConfigEntries(new BrokerConfig(), { 'retention.ms': '1000' })
  const byName = new Map(entries.map((e) => [e.name, e]))
  assert.equal(byName.get('retention.ms')?.source, 'DYNAMIC_TOPIC')
  assert.equal(byName.get('segment.bytes')?.source, 'DEFAULT')
  assert.equal(byName.get('segment.bytes')?.value, '1073741824')
})

void test('--config arguments parse as key=value', () => {
  assert.deepEqual(parseConfigArgs(['a.b=1', 'c= x=y ']), { 'a.b': '1', c: 'x=y' })
  assert.throws(() => parseConfigArgs(['novalue']), ConfigError)
  assert.throws(() => parseConfigArgs(['=1']), ConfigError)
})
