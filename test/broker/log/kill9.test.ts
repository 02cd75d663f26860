import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import path from 'node:path'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { appendValues, openLog, readAll, removeDir, tempDir } from './helpers.ts'

const fixture = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'appender.ts')

/** Runs the appender until it has acked `minAcks` records (or died), waits a random moment, kills it. */
async function runAndKill(dir: string, runId: string, minAcks: number, acked: Map<number, string>): Promise<number> {
  const child = spawn(process.execPath, [fixture, dir, runId], { stdio: ['ignore', 'pipe', 'pipe'] })
  let pending = ''
  let acks = 0
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  child.stdout.on('data', (d: Buffer) => {
    pending += d.toString()
    let nl: number
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl)
      pending = pending.slice(nl + 1)
      if (!line.startsWith('ack ')) continue
      const space = line.indexOf(' ', 4)
      const offset = Number(line.slice(4, space))
      const value = line.slice(space + 1)
      assert.ok(!acked.has(offset) || acked.get(offset) === value, `offset ${offset} acked twice with different values`)
      acked.set(offset, value)
      acks++
    }
  })
  const exited = new Promise<void>((resolve) => child.on('close', () => resolve()))
  const deadline = Date.now() + 20_000
  while (acks < minAcks && child.exitCode === null && Date.now() < deadline) await sleep(2)
  await sleep(Math.random() * 40)
  child.kill('SIGKILL')
  await exited
  assert.equal(stderr, '', 'appender wrote to stderr')
  assert.equal(child.signalCode, 'SIGKILL', 'the appender was killed, not crashed')
  return acks
}

test('kill -9 at random moments loses no acknowledged record', async () => {
  const dir = tempDir('cortado-kill9-')
  try {
    const acked = new Map<number, string>()
    const runs = ['r0', 'r1', 'r2', 'r3', 'r4']
    let total = 0
    for (const [i, runId] of runs.entries()) {
      // The first kill comes as early as possible (possibly mid-startup); the others after some acks.
      total += await runAndKill(dir, runId, i === 0 ? 0 : 100 + Math.floor(Math.random() * 1500), acked)
    }
    assert.ok(total > 200, `only ${total} acks`)

    const log = openLog(dir, { segmentBytes: 32 * 1024, indexIntervalBytes: 1024 })
    const records = readAll(log, 256 * 1024)
    assert.ok(log.segmentCount > 1)
    const byOffset = new Map(records)
    for (const [offset, value] of acked)
      assert.equal(byOffset.get(offset), value, `acked offset ${offset} lost or changed`)
    // Every record (acked or not) appears once, in append order: runs in order, sequence increasing.
    let prev: [number, number] = [-1, -1]
    records.forEach(([offset, value], i) => {
      assert.equal(offset, i, 'offsets are contiguous from 0')
      const [run, seq] = value.split(':')
      const cur: [number, number] = [runs.indexOf(run), Number(seq)]
      assert.ok(
        cur[0] > prev[0] || (cur[0] === prev[0] && cur[1] > prev[1]),
        `out of order at ${offset}: ${value.slice(0, 20)}`,
      )
      prev = cur
    })
    const next = log.logEndOffset
    const { baseOffset } = appendValues(log, ['final'])
    assert.equal(baseOffset, next)
    await log.close()
  } finally {
    removeDir(dir)
  }
})
