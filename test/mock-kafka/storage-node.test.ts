// A storage node (`cortado node`) whose Kafka producer cannot get a producer id: on librdkafka's
// mock cluster (test/helpers/mock-kafka.ts), InitProducerId is answered
// CLUSTER_AUTHORIZATION_FAILED (31, not retriable) twice. The node must not exit: it reports
// each failed registration with Kafka's error and becomes ready once Kafka gives it an id.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { startMockKafka, type MockKafka } from '../helpers/mock-kafka.ts'

const INIT_PRODUCER_ID = 22
const CLUSTER_AUTHORIZATION_FAILED = 31

let mock: MockKafka

before(async () => {
  mock = await startMockKafka(3)
  await mock.topic('__cortado_metadata', 1, 3)
})

after(async () => {
  await mock.stop()
})

void test('a node refused a producer id keeps retrying its registration, says why, and becomes ready', async () => {
  await mock.errors(INIT_PRODUCER_ID, CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_FAILED)
  const dir = tempDir('mock-node')
  const proc = spawn(
    process.execPath,
    [MAIN, 'node', '--id', 'n1', '--data-dir', join(dir, 'n1'), '--bootstrap', mock.bootstrap],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CORTADO_LOG_LEVEL: 'info' } },
  )
  let err = ''
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  try {
    await new Promise<void>((resolve, reject) => {
      let out = ''
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        if (/^cortado node ready id=n1 /m.test(out)) resolve()
      })
      void exited.then((code) => reject(new Error(`cortado node exited with ${code} before it was ready:\n${err}`)))
    })
    const retries = err
      .split('\n')
      .filter((l) => l.includes('node registration not written to Kafka; retrying'))
      .map((l) => JSON.parse(l) as { attempt: number; topic: string; error: string })
    assert.deepEqual(
      retries.map((r) => r.attempt),
      [1, 2],
    )
    for (const r of retries) {
      assert.equal(r.topic, '__cortado_metadata')
      assert.match(r.error, /CLUSTER_AUTHORIZATION_FAILED \(31\)/)
    }
    assert.match(err, /"msg":"node registered","component":"node","node":"n1","attempts":3/)
  } finally {
    proc.kill('SIGTERM')
    const code = await exited
    removeDir(dir)
    assert.equal(code, 0, `cortado node stopped cleanly:\n${err.slice(-3000)}`)
  }
})
