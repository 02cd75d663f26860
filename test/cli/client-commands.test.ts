// `cortado produce`, `cortado consume` and `cortado audit` as a user runs them, against the real
// broker with message.max.bytes = 1 MB: a 20 MB file goes through whole, stdin lines go one
// message each, and the audit report finds every produced message consumed.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { type BrokerProcess, ROOT, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'

const MAIN = join(ROOT, 'src', 'cli', 'main.ts')
let broker: BrokerProcess
let work: string

before(async () => {
  broker = await startBroker({ config: { 'message.max.bytes': '1048576', 'group.initial.rebalance.delay.ms': '0' } })
  work = tempDir('cli-client')
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
  removeDir(work)
})

function run(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
    p.stdin.end(stdin ?? '')
  })
}

void test(
  'a 20 MB file and stdin lines are produced, consumed whole, and the audit is complete',
  { timeout: 120_000 },
  async () => {
    const started = Date.now()
    const file = join(work, 'big.bin')
    const big = randomBytes(20_000_000)
    writeFileSync(file, big)
    const sent = await run(['produce', '--bootstrap', broker.bootstrap, '--topic', 'cli-topic', '--file', file])
    assert.equal(sent.code, 0, sent.stderr)
    const ack = JSON.parse(sent.stdout.trim()) as { partition: number; offset: string; segments: number }
    assert.ok(ack.segments >= 20, `split into ${ack.segments} segments`)

    const lines = await run(
      ['produce', '--bootstrap', broker.bootstrap, '--topic', 'cli-topic'],
      'first\nsecond\nthird\n',
    )
    assert.equal(lines.code, 0, lines.stderr)
    assert.equal(lines.stdout.trim().split('\n').length, 3)

    const out = join(work, 'out')
    const got = await run([
      'consume',
      '--bootstrap',
      broker.bootstrap,
      '--topic',
      'cli-topic',
      '--group',
      'cli-group',
      '--count',
      '4',
      '--output',
      out,
    ])
    assert.equal(got.code, 0, got.stderr)
    const files = readdirSync(out).sort((a, b) => Number(a.split('-').pop()) - Number(b.split('-').pop()))
    assert.equal(files.length, 4)
    assert.ok(readFileSync(join(out, files[0])).equals(big), 'the 20 MB message arrives whole')
    assert.deepEqual(
      files.slice(1).map((f) => readFileSync(join(out, f), 'utf8')),
      ['first', 'second', 'third'],
    )

    const printed = await run([
      'consume',
      '--bootstrap',
      broker.bootstrap,
      '--topic',
      'cli-topic',
      '--from-beginning',
      '--count',
      '4',
    ])
    assert.equal(printed.code, 0, printed.stderr)
    assert.deepEqual(printed.stdout.trim().split('\n').slice(-3), ['first', 'second', 'third'])

    const from = new Date(started - 120_000).toISOString()
    const to = new Date(Date.now() + 120_000).toISOString()
    const report = await run([
      'audit',
      '--bootstrap',
      broker.bootstrap,
      '--topic',
      'cli-topic',
      '--group',
      'cli-group',
      '--from',
      from,
      '--to',
      to,
    ])
    assert.equal(report.code, 0, report.stdout + report.stderr)
    assert.match(report.stdout, /verdict: complete/)
    assert.match(report.stdout, /total\s+4\s+4\s+20000016\s+20000016/)

    const missing = await run([
      'audit',
      '--bootstrap',
      broker.bootstrap,
      '--topic',
      'cli-topic',
      '--group',
      'never-consumed',
      '--from',
      from,
      '--to',
      to,
    ])
    assert.equal(missing.code, 1)
    assert.match(missing.stdout, /verdict: missing 4/)
  },
)

void test('a message that is not acknowledged makes produce exit non-zero', async () => {
  const res = await run(['produce', '--bootstrap', broker.bootstrap, '--topic', 'bad/topic'], 'x\n')
  assert.notEqual(res.code, 0)
  assert.match(res.stderr, /not acknowledged/)
})

void test('bad client-command arguments exit 2 with usage', async () => {
  const res = await run([
    'audit',
    '--bootstrap',
    broker.bootstrap,
    '--topic',
    't',
    '--group',
    'g',
    '--from',
    'yesterday-ish',
    '--to',
    '0',
  ])
  assert.equal(res.code, 2)
  assert.match(res.stderr, /--from must be a time/)
})
