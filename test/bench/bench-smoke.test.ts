// Keeps `npm run bench:broker` working: a quick run must complete, verify what it consumed, and
// print a figure for every scenario. No assertion on the figures themselves (tests never fail on
// timing; the benchmark's numbers are reported by the benchmark itself).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT } from '../helpers/broker-process.ts'

void test(
  'bench/broker.ts --quick runs every scenario against the broker and the baseline, and the security scenario',
  { timeout: 180_000 },
  () => {
    const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'broker.ts'), '--quick'], {
      encoding: 'utf8',
      timeout: 170_000,
    })
    assert.equal(res.status, 0, res.stderr)
    for (const scenario of ['produce 100 B', 'consume 100 B', 'produce 1 KB', 'consume 1 KB', 'latency 100 B']) {
      const row = res.stdout.split('\n').find((l) => l.startsWith(scenario) && /records\/s|requests\/s/.test(l))
      assert.ok(row !== undefined, `no ${scenario} row in:\n${res.stdout}`)
      const [broker, baseline] = row
        .replace(/,/g, '')
        .split(/\s+/)
        .filter((x) => /^\d+(\.\d+)?$/.test(x))
        .map(Number)
      assert.ok(broker > 0 && baseline > 0, `${scenario}: ${row}`)
    }
    // The security scenario: one row per listener, each with a throughput and its ratio to PLAINTEXT.
    for (const listener of ['PLAINTEXT', 'SSL (TLS)', 'SASL_SSL + ACLs']) {
      const row = res.stdout.split('\n').find((l) => l.startsWith(listener + ' '))
      assert.ok(row !== undefined, `no ${listener} row in:\n${res.stdout}`)
      const m = /^\S.*?\s+(\d+)\s+.*\s(\d+\.\d\d)x$/.exec(row)
      assert.ok(m !== null && Number(m[1]) > 0 && Number(m[2]) > 0, `${listener}: ${row}`)
    }
  },
)
