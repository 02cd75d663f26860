// Kafka's client quotas as a pure module: the eight-level precedence and who shares a rate, the
// throttle time Kafka's Rate and QuotaUtils give (with an injected clock), the request quota and
// its cap, quota changes taking effect at once, unrecording, sensor expiry, and the validation
// messages AlterClientQuotas and DescribeClientQuotas answer with.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  InvalidQuotaError,
  type QuotaEntity,
  QuotaManager,
  type QuotaValues,
  quotaEntityKey,
  resolveQuota,
  validateEntity,
  validateQuotaFilter,
  validateQuotaOp,
} from '../../../src/broker/security/quotas.ts'

/** A mutable quota table with a version, as ClientQuotaStore offers them. */
class Quotas {
  version = 0
  readonly #table = new Map<string, QuotaValues>()
  constructor(entries: [QuotaEntity, QuotaValues][] = []) {
    for (const [entity, values] of entries) this.#table.set(quotaEntityKey(entity), values)
  }
  set(entity: QuotaEntity, values: QuotaValues): void {
    this.#table.set(quotaEntityKey(entity), values)
    this.version++
  }
  lookup = (entity: QuotaEntity): QuotaValues | undefined => this.#table.get(quotaEntityKey(entity))
}

/** A manager on a clock the test moves; Kafka's defaults (11 windows of 1 s) unless given. */
function manager(quotas: Quotas, options: { windowMs?: number; windows?: number } = {}) {
  const clock = { t: 0 }
  const m = new QuotaManager({ ...options, quotas: quotas.lookup, version: () => quotas.version, now: () => clock.t })
  return { m, clock }
}

const P = 'producer_byte_rate'

// The eight levels for user alice, client id app, most specific first, and whose traffic each
// measures together (the default levels measure alice's or app's own).
const LEVELS: { entity: QuotaEntity; sensor: { user?: string; clientId?: string } }[] = [
  { entity: { user: 'alice', clientId: 'app' }, sensor: { user: 'alice', clientId: 'app' } },
  { entity: { user: 'alice', clientId: null }, sensor: { user: 'alice', clientId: 'app' } },
  { entity: { user: 'alice' }, sensor: { user: 'alice' } },
  { entity: { user: null, clientId: 'app' }, sensor: { user: 'alice', clientId: 'app' } },
  { entity: { user: null, clientId: null }, sensor: { user: 'alice', clientId: 'app' } },
  { entity: { user: null }, sensor: { user: 'alice' } },
  { entity: { clientId: 'app' }, sensor: { clientId: 'app' } },
  { entity: { clientId: null }, sensor: { clientId: 'app' } },
]

test('each of the eight levels wins over every less specific one', () => {
  for (let i = 0; i < LEVELS.length; i++) {
    const quotas = new Quotas(LEVELS.slice(i).map((l, j) => [l.entity, { [P]: 100 * (i + j + 1) }]))
    const match = resolveQuota(quotas.lookup, 'alice', 'app', P)
    assert.deepEqual(match, { entity: LEVELS[i].entity, bound: 100 * (i + 1), sensor: LEVELS[i].sensor }, `level ${i}`)
  }
})

test('quotas of other users and client ids, or on other keys, do not apply', () => {
  const quotas = new Quotas([
    [{ user: 'bob' }, { [P]: 1 }],
    [{ user: 'alice', clientId: 'other' }, { [P]: 2 }],
    [{ clientId: 'other' }, { [P]: 3 }],
    [{ user: 'alice' }, { consumer_byte_rate: 4 }],
  ])
  assert.equal(resolveQuota(quotas.lookup, 'alice', 'app', P), undefined)
  // Each key resolves on its own: alice's consumer quota does not hide the default user's producer quota.
  quotas.set({ user: null }, { [P]: 5 })
  assert.deepEqual(resolveQuota(quotas.lookup, 'alice', 'app', P)?.entity, { user: null })
  assert.deepEqual(resolveQuota(quotas.lookup, 'alice', 'app', 'consumer_byte_rate')?.entity, { user: 'alice' })
})

test("a user's quota is one rate for all her client ids", () => {
  const { m } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]))
  assert.equal(m.record(P, 'alice', 'app-1', 15_000), 5000)
  assert.equal(m.record(P, 'alice', 'app-2', 0), 5000)
  assert.equal(m.sensorCount, 1)
})

test('a <default> user quota is a rate per user, a <default> client-id quota a rate per client id', () => {
  const users = manager(new Quotas([[{ user: null }, { [P]: 1000 }]]))
  assert.equal(users.m.record(P, 'alice', 'app', 15_000), 5000)
  assert.equal(users.m.record(P, 'alice', 'other', 0), 5000)
  assert.equal(users.m.record(P, 'bob', 'app', 0), 0)
  assert.equal(users.m.sensorCount, 2)

  const clients = manager(new Quotas([[{ clientId: null }, { [P]: 1000 }]]))
  assert.equal(clients.m.record(P, 'alice', 'app', 15_000), 5000)
  assert.equal(clients.m.record(P, 'bob', 'app', 0), 5000)
  assert.equal(clients.m.record(P, 'alice', 'other', 0), 0)
})

test('the throttle is (rate - bound) / bound * window, the window at least 10 s of 11 one-second samples', () => {
  const { m, clock } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]))
  // 5000 bytes at once: measured over the minimum window (10 s), 500 B/s, within the quota.
  assert.equal(m.record(P, 'alice', 'app', 5000), 0)
  // 15000 bytes: 1500 B/s over 10 s; waiting X with 15000 / (10 + X) = 1000 is X = 5 s.
  assert.equal(m.record(P, 'alice', 'app', 10_000), 5000)
  // Kafka's window does not grow below its minimum: 5 s later the rate is still 1500 B/s.
  clock.t = 5000
  assert.equal(m.record(P, 'alice', 'app', 0), 5000)
  // 11 windows after the burst its sample is dropped: the client is within its quota again.
  clock.t = 11_000
  assert.equal(m.record(P, 'alice', 'app', 0), 0)
})

test('past the minimum, the window is the time since the oldest sample began', () => {
  const { m, clock } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]))
  for (let t = 0; t < 10_000; t += 1000) {
    clock.t = t
    assert.equal(m.record(P, 'alice', 'app', 1000), 0)
  }
  // 11000 bytes over exactly 10 s: (1100 - 1000) / 1000 * 10000 ms.
  clock.t = 10_000
  assert.equal(m.record(P, 'alice', 'app', 1000), 1000)
  // The sample of t=0 expires; 11000 bytes over the 10.5 s since t=1000: (11000 - 10500) ms.
  clock.t = 11_500
  assert.equal(m.record(P, 'alice', 'app', 1000), 500)
})

test('a producer at twice its quota that waits out each throttle averages its quota', () => {
  const { m, clock } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]))
  const sent: [number, number][] = []
  // 200 bytes every 100 ms is 2000 B/s; after a throttle the next send waits for it instead.
  while (clock.t < 120_000) {
    const throttleMs = m.record(P, 'alice', 'app', 200)
    sent.push([clock.t, 200])
    clock.t += Math.max(100, throttleMs)
  }
  const rate = (from: number, to: number) =>
    sent.filter(([t]) => t >= from && t < to).reduce((sum, [, n]) => sum + n, 0) / ((to - from) / 1000)
  // The first 30 s run over by Kafka's design (an idle client may burst up to 10 s of quota at
  // once), so each 30 s is checked once the client has used that allowance up.
  for (let from = 60_000; from < 120_000; from += 30_000) {
    const r = rate(from, from + 30_000)
    assert.ok(Math.abs(r - 1000) <= 100, `${r} B/s from ${from} ms`)
  }
  assert.ok(Math.abs(rate(0, 120_000) - 1000) <= 50, `${rate(0, 120_000)} B/s over 120 s`)
})

test('request_percentage counts handler ms as percent of a thread, throttled at most one window', () => {
  const { m } = manager(new Quotas([[{ user: 'alice' }, { request_percentage: 100 }]]))
  // 10200 ms of handler time over the 10 s window is 102% of a thread: (102 - 100) / 100 * 10 s.
  assert.equal(m.record('request_percentage', 'alice', 'app', 10_200), 200)
  // Far over: Kafka's request quota throttles for at most one window (1 s).
  assert.equal(m.record('request_percentage', 'alice', 'app', 50_000), 1000)
  const fast = manager(new Quotas([[{ user: 'alice' }, { request_percentage: 100 }]]), { windowMs: 500 })
  assert.equal(fast.m.record('request_percentage', 'alice', 'app', 50_000), 500)
})

test('byte-rate throttles are not capped, as in Kafka (only to the int32 of the wire)', () => {
  const { m } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]))
  assert.equal(m.record(P, 'alice', 'app', 1_000_000), 990_000)
  assert.equal(m.record(P, 'alice', 'app', 1e15), 0x7fffffff)
})

test('without a quota nothing is recorded and nothing throttled', () => {
  const quotas = new Quotas([[{ user: 'bob' }, { [P]: 1000 }]])
  const { m } = manager(quotas)
  assert.equal(m.record(P, 'alice', 'app', 1e9), 0)
  assert.equal(m.sensorCount, 0)
  // The gigabyte was not counted: once a quota applies, alice starts from nothing.
  quotas.set({ user: 'alice' }, { [P]: 1000 })
  assert.equal(m.record(P, 'alice', 'app', 5000), 0)
})

test('a quota change takes effect at the next record; the rate measured so far is kept', () => {
  const quotas = new Quotas([[{ user: 'alice' }, { [P]: 1000 }]])
  const { m } = manager(quotas)
  assert.equal(m.record(P, 'alice', 'app', 15_000), 5000)
  quotas.set({ user: 'alice' }, { [P]: 3000 })
  assert.equal(m.record(P, 'alice', 'app', 0), 0)
  quotas.set({ user: 'alice' }, { [P]: 500 })
  assert.equal(m.record(P, 'alice', 'app', 0), 20_000)
  // A more specific quota is a different sensor: measured afresh.
  quotas.set({ user: 'alice', clientId: 'app' }, { [P]: 500 })
  assert.equal(m.record(P, 'alice', 'app', 0), 0)
  assert.equal(m.sensorCount, 2)
})

test('unrecord takes back a throttled fetch', () => {
  const { m } = manager(new Quotas([[{ user: 'alice' }, { consumer_byte_rate: 1000 }]]))
  assert.equal(m.record('consumer_byte_rate', 'alice', 'app', 5000), 0)
  assert.equal(m.record('consumer_byte_rate', 'alice', 'app', 10_000), 5000)
  m.unrecord('consumer_byte_rate', 'alice', 'app', 10_000)
  assert.equal(m.record('consumer_byte_rate', 'alice', 'app', 0), 0)
  // Nothing to take back without a quota (no sensor is created for it).
  m.unrecord('consumer_byte_rate', 'bob', 'app', 10_000)
  assert.equal(m.sensorCount, 1)
})

test('sensors unused for an hour are dropped', () => {
  const { m, clock } = manager(new Quotas([[{ user: null }, { [P]: 1000 }]]))
  m.record(P, 'alice', 'app', 1)
  clock.t = 1_800_000
  m.record(P, 'bob', 'app', 1)
  assert.equal(m.sensorCount, 2)
  clock.t = 3_630_001
  m.record(P, 'bob', 'app', 1)
  assert.equal(m.sensorCount, 1)
})

test('bad options and amounts are InvalidQuotaError', () => {
  const quotas = new Quotas()
  const is = (e: unknown) => e instanceof InvalidQuotaError && e.code === 'INVALID_QUOTA'
  assert.throws(() => manager(quotas, { windowMs: 0 }), is)
  assert.throws(() => manager(quotas, { windows: 0 }), is)
  assert.throws(() => manager(quotas, { windows: 1.5 }), is)
  const { m } = manager(quotas)
  assert.throws(() => m.record(P, 'alice', 'app', -1), is)
  assert.throws(() => m.record(P, 'alice', 'app', NaN), is)
})

test('a single window of a single sample never divides by zero', () => {
  const { m } = manager(new Quotas([[{ user: 'alice' }, { [P]: 1000 }]]), { windows: 1 })
  // Window 1 ms (the floor): 2 bytes in 1 ms is 2000 B/s, throttled by (2000 - 1000) / 1000 * 1 ms.
  assert.equal(m.record(P, 'alice', 'app', 2), 1)
})

test('validateQuotaOp: Kafka’s messages, and positive finite values only', () => {
  assert.equal(validateQuotaOp('producer_byte_rate', 1024), undefined)
  assert.equal(validateQuotaOp('consumer_byte_rate', null), undefined)
  assert.equal(validateQuotaOp('request_percentage', 12.5), undefined)
  assert.equal(validateQuotaOp('controller_mutation_rate', 1), 'Invalid configuration key controller_mutation_rate')
  assert.equal(validateQuotaOp('bogus', null), 'Invalid configuration key bogus')
  assert.equal(validateQuotaOp('producer_byte_rate', 1.5), 'Configuration producer_byte_rate must be a Long value')
  assert.equal(validateQuotaOp('producer_byte_rate', 0), 'Configuration producer_byte_rate must be greater than 0')
  assert.equal(validateQuotaOp('consumer_byte_rate', -5), 'Configuration consumer_byte_rate must be greater than 0')
  assert.equal(validateQuotaOp('request_percentage', 0), 'Configuration request_percentage must be greater than 0')
  assert.equal(validateQuotaOp('request_percentage', NaN), 'Configuration request_percentage must be a finite number')
  assert.equal(
    validateQuotaOp('producer_byte_rate', Infinity),
    'Configuration producer_byte_rate must be a finite number',
  )
})

test('validateEntity: user and client-id, each at most once, at least one, names not empty', () => {
  const e = (entityType: string, entityName: string | null) => ({ entityType, entityName })
  assert.equal(validateEntity([e('user', 'alice'), e('client-id', null)]), undefined)
  assert.equal(validateEntity([e('client-id', 'app')]), undefined)
  assert.equal(validateEntity([e('user', null)]), undefined)
  assert.equal(validateEntity([]), 'Invalid empty client quota entity')
  assert.equal(
    validateEntity([e('user', 'alice'), e('user', 'bob')]),
    'Invalid empty client quota entity, duplicate entity entry user',
  )
  assert.equal(validateEntity([e('ip', '10.0.0.1')]), 'Unhandled client quota entity type: ip')
  assert.equal(validateEntity([e('user', '')]), 'Empty user not supported')
})

test('validateQuotaFilter: Kafka’s DescribeClientQuotas messages', () => {
  const c = (entityType: string, matchType: number, match: string | null) => ({ entityType, matchType, match })
  assert.equal(validateQuotaFilter([]), undefined)
  assert.equal(validateQuotaFilter([c('user', 0, 'alice'), c('client-id', 2, null)]), undefined)
  assert.equal(validateQuotaFilter([c('', 2, null)]), 'Invalid empty entity type.')
  assert.equal(
    validateQuotaFilter([c('user', 1, null), c('user', 2, null)]),
    'Entity type user cannot appear more than once in the filter.',
  )
  assert.equal(validateQuotaFilter([c('ip', 2, null)]), 'Unsupported entity type ip')
  assert.equal(
    validateQuotaFilter([c('user', 0, null)]),
    'Request specified MATCH_TYPE_EXACT, but set match string to null.',
  )
  assert.equal(
    validateQuotaFilter([c('user', 1, 'x')]),
    'Request specified MATCH_TYPE_DEFAULT, but also specified a match string.',
  )
  assert.equal(
    validateQuotaFilter([c('user', 2, 'x')]),
    'Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.',
  )
  assert.equal(validateQuotaFilter([c('user', 7, null)]), 'Unknown match type 7')
})
