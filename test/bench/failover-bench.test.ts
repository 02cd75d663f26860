// Keeps `npm run bench:failover` working: a quick run (a real cluster of separate processes, one
// master SIGKILLed under load) must complete and print a figure for every row of its table. No
// assertion on the figures themselves (tests never fail on timing; the benchmark's numbers are
// reported by the benchmark itself).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT } from '../helpers/broker-process.ts'

const NUMBER = /^-?[\d,]+(\.\d+)?$/

void test('bench/failover.ts --quick kills a master under load and prints every figure', { timeout: 240_000 }, () => {
  const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'failover.ts'), '--quick'], {
    encoding: 'utf8',
    timeout: 230_000,
  })
  assert.equal(res.status, 0, `exit ${res.status} (${res.signal})\n${res.stdout}\n${res.stderr}`)
  const lines = res.stdout.split('\n')
  /** The value column of the row whose metric starts with `metric`. */
  const value = (metric: string | RegExp): string => {
    const line = lines.find((l) => (typeof metric === 'string' ? l.startsWith(metric) : metric.test(l)))
    assert.ok(line !== undefined, `no row ${String(metric)} in:\n${res.stdout}`)
    const m = /^.+?\S\s{2,}(\S+)/.exec(line)
    assert.ok(m !== null, `no value in row: ${line}`)
    return m[1]
  }
  for (const metric of [
    'failover median (ms)',
    'failover worst (ms)',
    /^ {2}kill 1: n\d \(ms\)/,
    'failover steps, median (ms)',
    'writes/s, no faults',
    'write latency p50 (ms)',
    'write latency p99 (ms)',
    'writes/s, kill phase',
    'replication lag p50 (txns)',
    'replication lag p99 (txns)',
    'replication lag max (txns)',
    'failed writes, failovers',
    'failed writes, after failovers',
    'failed writes, outside',
    'mastership moves after failover',
    'restart → ready (ms), median',
    'restart → caught up (ms), median',
  ]) {
    assert.match(value(metric), NUMBER, `row ${String(metric)}`)
  }
  assert.match(value('2 s aim met'), /^(yes|no)$/)
  // The kill's steps were found in the processes' logs.
  const kill = lines.find((l) => /^ {2}kill 1:/.test(l))!
  assert.match(kill, /decided \+[\d,]+, promoting \+[\d,]+, taking writes \+[\d,]+, first write \+[\d,]+/)
})
