// The history checker on hand-made histories: each anomaly it names is found, and a valid
// history (with failed and unknown outcomes, and stale reads where they are allowed) passes.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { checkHistory, compareVersions, type FinalState, type Operation } from '../helpers/history/checker.ts'

const final = (
  registers: Record<string, [string | null, string | null]>,
  counters: Record<string, number> = {},
): FinalState => ({
  registers: new Map(Object.entries(registers).map(([k, [value, etag]]) => [k, { value, etag }])),
  counters: new Map(Object.entries(counters)),
})

const w = (
  key: string,
  value: string,
  invokedAt: number,
  completedAt: number,
  outcome: 'ok' | 'fail' | 'info',
  etag?: string,
): Operation => ({
  kind: 'write',
  key,
  value,
  invokedAt,
  completedAt,
  outcome,
  ...(etag === undefined ? {} : { etag }),
})
const r = (
  key: string,
  invokedAt: number,
  completedAt: number,
  value: string | null,
  etag: string | null,
  consistency: 'master' | 'any' = 'master',
): Operation => ({ kind: 'read', key, consistency, invokedAt, completedAt, outcome: 'ok', value, etag })
const inc = (key: string, outcome: 'ok' | 'fail' | 'info'): Operation => ({
  kind: 'increment',
  key,
  invokedAt: 0,
  completedAt: 1,
  outcome,
})

void test('versions order by generation, then scn; no document is older than any', () => {
  assert.ok(compareVersions('1.9', '1.10') < 0)
  assert.ok(compareVersions('2.0', '1.99') > 0)
  assert.equal(compareVersions('3.4', '3.4'), 0)
  assert.ok(compareVersions(null, '0.0') < 0)
})

void test('a valid history passes, with failed and unknown writes and stale reads where allowed', () => {
  const history = [
    w('a', 'x1', 0, 2, 'ok', '1.1'),
    w('a', 'x2', 3, 5, 'fail'),
    w('a', 'x3', 4, 9, 'info'),
    r('a', 6, 7, 'x1', '1.1'),
    w('a', 'x4', 10, 12, 'ok', '2.1'),
    r('a', 13, 14, 'x1', '1.1', 'any'),
    r('a', 15, 16, 'x4', '2.1'),
    inc('c', 'ok'),
    inc('c', 'ok'),
    inc('c', 'info'),
    inc('c', 'fail'),
  ]
  const report = checkHistory(history, final({ a: ['x4', '2.1'] }, { c: 3 }))
  assert.deepEqual(report.anomalies, [])
  assert.ok(report.valid)
  assert.deepEqual(report.counts, {
    writes: 4,
    acknowledged: 2,
    failed: 1,
    unknown: 1,
    reads: 3,
    staleAllowedReads: 1,
    increments: 4,
  })
})

void test('an acknowledged write missing from the final state is a lost write', () => {
  const report = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), w('a', 'x2', 2, 3, 'ok', '1.2')],
    final({ a: ['x1', '1.1'] }),
  )
  assert.deepEqual(
    report.anomalies.map((a) => a.kind),
    ['lost-write'],
  )
  assert.match(report.anomalies[0].detail, /x2 acknowledged as 1.2; final version 1.1/)
  assert.deepEqual(
    checkHistory([w('a', 'x1', 0, 1, 'ok', '1.1')], final({ a: [null, null] })).anomalies.map((a) => a.kind),
    ['lost-write'],
  )
})

void test('a master read older than a write acknowledged before it began is stale; overlapping writes are not', () => {
  const stale = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), w('a', 'x2', 2, 3, 'ok', '1.2'), r('a', 4, 5, 'x1', '1.1')],
    final({ a: ['x2', '1.2'] }),
  )
  assert.deepEqual(
    stale.anomalies.map((a) => a.kind),
    ['stale-read'],
  )
  // The read began before the second write was acknowledged: either answer is fine.
  const concurrent = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), w('a', 'x2', 2, 6, 'ok', '1.2'), r('a', 4, 5, 'x1', '1.1')],
    final({ a: ['x2', '1.2'] }),
  )
  assert.deepEqual(concurrent.anomalies, [])
  // A read of nothing after an acknowledged write is stale too.
  assert.deepEqual(
    checkHistory(
      [w('a', 'x1', 0, 1, 'ok', '1.1'), r('a', 2, 3, null, null)],
      final({ a: ['x1', '1.1'] }),
    ).anomalies.map((a) => a.kind),
    ['stale-read'],
  )
})

void test('counters: fewer than the acknowledged increments is a lost update; more than attempted is one too', () => {
  assert.deepEqual(
    checkHistory([inc('c', 'ok'), inc('c', 'ok'), inc('c', 'ok')], final({}, { c: 2 })).anomalies.map((a) => a.kind),
    ['lost-update'],
  )
  assert.deepEqual(
    checkHistory([inc('c', 'ok'), inc('c', 'fail')], final({}, { c: 2 })).anomalies.map((a) => a.kind),
    ['lost-update'],
  )
  assert.deepEqual(checkHistory([inc('c', 'ok'), inc('c', 'info')], final({}, { c: 2 })).anomalies, [])
})

void test('a value under two versions is a duplicate; a value never sent is a phantom; a version read with another value is a mismatch', () => {
  const dup = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), r('a', 2, 3, 'x1', '1.1'), r('a', 4, 5, 'x1', '1.3')],
    final({ a: ['x1', '1.3'] }),
  )
  assert.ok(dup.anomalies.some((a) => a.kind === 'duplicate' && /x1 seen under versions 1.1, 1.3/.test(a.detail)))
  const phantom = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), r('a', 2, 3, 'zz', '1.2')],
    final({ a: ['x1', '1.1'] }),
  )
  assert.ok(phantom.anomalies.some((a) => a.kind === 'phantom'))
  const mismatch = checkHistory(
    [w('a', 'x1', 0, 1, 'ok', '1.1'), w('a', 'x2', 0, 1, 'info'), r('a', 2, 3, 'x2', '1.1')],
    final({ a: ['x1', '1.1'] }),
  )
  assert.ok(mismatch.anomalies.some((a) => a.kind === 'mismatch'))
  assert.equal(mismatch.valid, false)
})
