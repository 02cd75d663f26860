// Keeps `npm run bench:import` working: a quick run loads the same documents into PostgreSQL (COPY)
// and into Cortado (`cortado import`), and prints a rate for each and their ratio beside the target.
// No assertion on the figures themselves (tests never fail on timing).
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { INSTALL_HINT, PG_PACKAGE, postgresInstalled } from '../../bench/db-postgres.ts'
import { ROOT } from '../helpers/broker-process.ts'

if (postgresInstalled()) {
  void test(
    'bench/import.ts --quick loads the same documents into PostgreSQL and Cortado and prints both rates and their ratio',
    { timeout: 180_000 },
    () => {
      const res = spawnSync(process.execPath, [join(ROOT, 'bench', 'import.ts'), '--quick'], {
        encoding: 'utf8',
        timeout: 170_000,
      })
      assert.equal(res.status, 0, `${res.stdout}\n${res.stderr}`)
      assert.match(res.stdout, /sync_state=sync/)
      for (const system of ['postgres', 'cortado']) {
        const m = new RegExp(`^${system}\\s+([\\d,]+)\\s+([\\d.,]+)\\s+([\\d,]+)\\s+(\\d+\\.\\d+)x`, 'm').exec(
          res.stdout,
        )
        assert.ok(m !== null, `no ${system} row in:\n${res.stdout}`)
        const [documents, seconds, rate, ratio] = m.slice(1).map((x) => Number(x.replace(/,/g, '')))
        assert.equal(documents, 2000, m[0])
        assert.ok(seconds > 0 && rate > 0 && ratio > 0, m[0])
      }
      assert.match(res.stdout, /^ratio cortado\/postgres: \d+\.\d+x \(target >= 0\.5x: (met|not met)\)$/m)
    },
  )
} else {
  void test('without PostgreSQL 15, the import benchmark says what to install', () => {
    assert.match(INSTALL_HINT, new RegExp(`apt-get install -y ${PG_PACKAGE}`))
  })
}
