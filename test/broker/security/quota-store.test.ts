// The broker's durable client quotas: every change is on disk when it returns, in one write per
// call, none when nothing changes; null removes a quota and an entity left with none; describe
// follows Kafka's DescribeClientQuotas filter; a corrupt file stops the broker with its path.
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { CLIENT_QUOTAS_FILE, ClientQuotaStore, QuotaFileError } from '../../../src/broker/security/quota-store.ts'
import { InvalidQuotaError, MatchType, type QuotaEntity } from '../../../src/broker/security/quotas.ts'
import { removeDir, tempDir } from '../../helpers/broker-process.ts'

function withDir(fn: (dir: string) => void): void {
  const dir = tempDir('quota-store')
  try {
    fn(dir)
  } finally {
    removeDir(dir)
  }
}

test('a missing file is an empty store', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    assert.deepEqual(store.describe([], false), [])
    assert.equal(store.get({ user: 'alice' }), undefined)
    assert.equal(store.version, 0)
    assert.throws(() => statSync(join(dir, CLIENT_QUOTAS_FILE)), { code: 'ENOENT' })
  })
})

test('quotas survive a reopen, <default> and absent told apart, in a 0600 file', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    store.alter({ user: 'alice' }, [{ key: 'producer_byte_rate', value: 1024 }])
    store.alter({ user: 'alice', clientId: null }, [{ key: 'consumer_byte_rate', value: 2048 }])
    store.alter({ clientId: null }, [
      { key: 'request_percentage', value: 50 },
      { key: 'producer_byte_rate', value: 10 },
    ])
    const reopened = ClientQuotaStore.open(dir)
    assert.deepEqual(reopened.get({ user: 'alice' }), { producer_byte_rate: 1024 })
    assert.deepEqual(reopened.get({ user: 'alice', clientId: null }), { consumer_byte_rate: 2048 })
    assert.deepEqual(reopened.get({ clientId: null }), { producer_byte_rate: 10, request_percentage: 50 })
    assert.equal(reopened.get({ user: null }), undefined)
    assert.equal(reopened.get({ user: 'alice', clientId: 'app' }), undefined)
    const path = join(dir, CLIENT_QUOTAS_FILE)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { format: number; quotas: unknown[] }
    assert.equal(doc.format, 1)
    assert.deepEqual(doc.quotas[1], {
      entity: [
        { entityType: 'user', entityName: 'alice' },
        { entityType: 'client-id', entityName: null },
      ],
      values: { consumer_byte_rate: 2048 },
    })
  })
})

test('null removes a quota; an entity left with none is removed; a call changing nothing writes nothing', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    const alice = { user: 'alice' }
    store.alter(alice, [
      { key: 'producer_byte_rate', value: 1024 },
      { key: 'consumer_byte_rate', value: 2048 },
    ])
    assert.equal(store.version, 1)
    store.alter(alice, [{ key: 'producer_byte_rate', value: null }])
    assert.deepEqual(ClientQuotaStore.open(dir).get(alice), { consumer_byte_rate: 2048 })
    const path = join(dir, CLIENT_QUOTAS_FILE)
    writeFileSync(path, '{"format": 1, "quotas": []}\n') // a marker: a write would replace it
    store.alter(alice, [
      { key: 'consumer_byte_rate', value: 2048 },
      { key: 'request_percentage', value: null },
    ])
    store.alter({ user: 'bob' }, [{ key: 'producer_byte_rate', value: null }])
    assert.equal(store.version, 2)
    assert.equal(readFileSync(path, 'utf8'), '{"format": 1, "quotas": []}\n')
    store.alter(alice, [{ key: 'consumer_byte_rate', value: null }])
    assert.equal(store.version, 3)
    assert.equal(store.get(alice), undefined)
    assert.deepEqual(ClientQuotaStore.open(dir).describe([], false), [])
  })
})

test('alter refuses an invalid entity or op and changes nothing', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    const refused = (entity: QuotaEntity, ops: Parameters<ClientQuotaStore['alter']>[1], message: string) =>
      assert.throws(
        () => store.alter(entity, ops),
        (e) => e instanceof InvalidQuotaError && e.code === 'INVALID_QUOTA' && e.message === message,
      )
    refused({}, [{ key: 'producer_byte_rate', value: 1 }], 'Invalid empty client quota entity')
    refused({ user: '' }, [{ key: 'producer_byte_rate', value: 1 }], 'Empty user not supported')
    refused(
      { user: 'alice' },
      [
        { key: 'producer_byte_rate', value: 1 },
        { key: 'consumer_byte_rate', value: -1 },
      ],
      'Configuration consumer_byte_rate must be greater than 0',
    )
    refused(
      { user: 'alice' },
      [
        { key: 'producer_byte_rate', value: 1 },
        { key: 'producer_byte_rate', value: null },
      ],
      'Duplicate quota key producer_byte_rate not updating quota for this entity',
    )
    assert.equal(store.version, 0)
    assert.equal(store.get({ user: 'alice' }), undefined)
    assert.throws(() => statSync(join(dir, CLIENT_QUOTAS_FILE)), { code: 'ENOENT' })
  })
})

test('the store keeps its own copies', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    const entity: QuotaEntity = { user: 'alice' }
    store.alter(entity, [{ key: 'producer_byte_rate', value: 1 }])
    entity.user = 'bob'
    assert.deepEqual(store.get({ user: 'alice' }), { producer_byte_rate: 1 })
    assert.throws(() => {
      store.get({ user: 'alice' })!.producer_byte_rate = 5
    })
  })
})

test("describe follows Kafka's filter: EXACT, DEFAULT, SPECIFIED, strict", () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    const alice = { user: 'alice' }
    const aliceApp = { user: 'alice', clientId: 'app' }
    const aliceDefault = { user: 'alice', clientId: null }
    const defaultUser = { user: null }
    const defaultBoth = { user: null, clientId: null }
    const app = { clientId: 'app' }
    const defaultClient = { clientId: null }
    const all = [alice, aliceApp, aliceDefault, defaultUser, defaultBoth, app, defaultClient]
    all.forEach((entity, i) => store.alter(entity, [{ key: 'producer_byte_rate', value: i + 1 }]))

    type Component = Parameters<ClientQuotaStore['describe']>[0][number]
    const user = (matchType: number, match: string | null = null): Component => ({
      entityType: 'user',
      matchType,
      match,
    })
    const client = (matchType: number, match: string | null = null): Component => ({
      entityType: 'client-id',
      matchType,
      match,
    })
    const entities = (components: Component[], strict: boolean) =>
      store.describe(components, strict).map((q) => q.entity)

    assert.deepEqual(entities([], false), all)
    assert.deepEqual(entities([], true), [])
    assert.deepEqual(entities([user(MatchType.EXACT, 'alice')], false), [alice, aliceApp, aliceDefault])
    assert.deepEqual(entities([user(MatchType.EXACT, 'alice')], true), [alice])
    assert.deepEqual(entities([user(MatchType.DEFAULT)], false), [defaultUser, defaultBoth])
    assert.deepEqual(entities([user(MatchType.DEFAULT)], true), [defaultUser])
    // SPECIFIED is any name, <default> included.
    assert.deepEqual(entities([user(MatchType.SPECIFIED)], true), [alice, defaultUser])
    assert.deepEqual(entities([user(MatchType.SPECIFIED)], false), [
      alice,
      aliceApp,
      aliceDefault,
      defaultUser,
      defaultBoth,
    ])
    assert.deepEqual(entities([user(MatchType.EXACT, 'alice'), client(MatchType.SPECIFIED)], true), [
      aliceApp,
      aliceDefault,
    ])
    assert.deepEqual(entities([client(MatchType.DEFAULT)], false), [aliceDefault, defaultBoth, defaultClient])
    assert.deepEqual(entities([client(MatchType.EXACT, 'app')], true), [app])
    assert.deepEqual(entities([user(MatchType.EXACT, 'bob')], false), [])
    assert.deepEqual(store.describe([client(MatchType.EXACT, 'app'), user(MatchType.DEFAULT)], false), [])
    assert.deepEqual(store.describe([user(MatchType.DEFAULT), client(MatchType.DEFAULT)], true), [
      { entity: defaultBoth, values: { producer_byte_rate: 5 } },
    ])
  })
})

test('describe refuses a filter Kafka refuses', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    assert.throws(
      () =>
        store.describe(
          [
            { entityType: 'user', matchType: MatchType.DEFAULT, match: null },
            { entityType: 'user', matchType: MatchType.SPECIFIED, match: null },
          ],
          false,
        ),
      (e) => e instanceof InvalidQuotaError && /cannot appear more than once/.test(e.message),
    )
    assert.throws(
      () => store.describe([{ entityType: 'user', matchType: MatchType.EXACT, match: null }], false),
      (e) => e instanceof InvalidQuotaError && /MATCH_TYPE_EXACT/.test(e.message),
    )
  })
})

test('version increments on every change and only then', () => {
  withDir((dir) => {
    const store = ClientQuotaStore.open(dir)
    store.alter({ user: 'alice' }, [{ key: 'producer_byte_rate', value: 1 }])
    store.alter({ user: 'alice' }, [{ key: 'producer_byte_rate', value: 2 }])
    store.alter({ user: 'alice' }, [{ key: 'producer_byte_rate', value: 2 }])
    store.alter({ clientId: 'app' }, [{ key: 'request_percentage', value: 1 }])
    store.alter({ user: 'alice' }, [{ key: 'producer_byte_rate', value: null }])
    assert.equal(store.version, 4)
    assert.equal(ClientQuotaStore.open(dir).version, 0)
  })
})

test('a corrupt file fails open with an error naming the path', () => {
  withDir((dir) => {
    const path = join(dir, CLIENT_QUOTAS_FILE)
    const entity = [{ entityType: 'user', entityName: 'alice' }]
    const good = { entity, values: { producer_byte_rate: 1024 } }
    const file = (quotas: unknown) => JSON.stringify({ format: 1, quotas })
    const corrupt = [
      '{"format": 1, "quotas": [',
      '[]',
      JSON.stringify({ format: 2, quotas: [] }),
      JSON.stringify({ format: 1, quotas: {} }),
      file([null]),
      file([{ entity }]),
      file([{ ...good, entity: [] }]),
      file([{ ...good, entity: [{ entityType: 'ip', entityName: '10.0.0.1' }] }]),
      file([{ ...good, entity: [{ entityType: 'user', entityName: 5 }] }]),
      file([{ ...good, entity: [{ entityType: 'user', entityName: '' }] }]),
      file([{ ...good, values: {} }]),
      file([{ ...good, values: { bogus: 1 } }]),
      file([{ ...good, values: { producer_byte_rate: '1024' } }]),
      file([{ ...good, values: { producer_byte_rate: -1 } }]),
      file([good, good]),
    ]
    for (const text of corrupt) {
      writeFileSync(path, text)
      assert.throws(
        () => ClientQuotaStore.open(dir),
        (e) =>
          e instanceof QuotaFileError &&
          e.code === 'CORRUPT_QUOTAS' &&
          e.path === path &&
          e.message.startsWith(`${path} is corrupt: `),
        text,
      )
    }
    writeFileSync(path, file([good]))
    assert.deepEqual(ClientQuotaStore.open(dir).get({ user: 'alice' }), { producer_byte_rate: 1024 })
  })
})
