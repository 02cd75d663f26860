// The network-namespace test network (test/helpers/netns.ts) with real processes: the broker in
// one namespace, `cortado produce` in another. A cut (both ways or one way) makes the client fail
// with "cannot reach" after its --connect-timeout, a link taken down likewise, and healing makes it
// work again. Network partitions of the database build on this harness.
import assert from 'node:assert/strict'
import { type ChildProcess } from 'node:child_process'
import { after, before, test } from 'node:test'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { TestNetwork } from '../helpers/netns.ts'

let net: TestNetwork
let broker: ChildProcess
let dataDir: string
let bootstrap: string

before(async () => {
  net = TestNetwork.create(['kafka', 'client'])
  dataDir = tempDir('netns')
  const kafka = net.host('kafka')
  bootstrap = `${kafka.ip}:9092`
  broker = net.spawn(
    'kafka',
    process.execPath,
    [MAIN, 'broker', '--host', kafka.ip, '--port', '9092', '--data-dir', dataDir],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  )
  let out = ''
  broker.stdout?.on('data', (d: Buffer) => (out += d.toString()))
  const deadline = Date.now() + 30_000
  while (!out.includes('ready on')) {
    if (Date.now() > deadline || broker.exitCode !== null)
      assert.fail(`the broker did not start in its namespace: ${out}`)
    await new Promise((r) => setTimeout(r, 50))
  }
})

after(() => {
  net.destroy()
  removeDir(dataDir)
})

function produce(value: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const args = [MAIN, 'produce', '--bootstrap', bootstrap, '--topic', 'netns', '--connect-timeout', '3']
    const p = net.spawn('client', process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
    p.stdin?.end(value + '\n')
  })
}

function assertUnreachable(res: { code: number | null; stderr: string }, what: string): void {
  assert.equal(res.code, 1, `${what}: ${res.stderr}`)
  assert.ok(res.stderr.includes(`cortado: cannot reach Kafka at ${bootstrap} after 3 s`), `${what}: ${res.stderr}`)
}

void test(
  'a client in one namespace reaches the broker in another; cuts and a downed link stop it; healing restores it',
  { timeout: 90_000 },
  async () => {
    const first = await produce('one')
    assert.equal(first.code, 0, first.stderr)
    assert.match(first.stdout, /"offset":"0"/)

    net.cut('client', 'kafka')
    assertUnreachable(await produce('cut both ways'), 'cut both ways')
    net.healAll()
    assert.match((await produce('two')).stdout, /"offset":"1"/)

    net.cut('client', 'kafka', { oneWay: true })
    assertUnreachable(await produce('cut one way'), 'cut client → kafka only')
    net.healAll()
    net.cut('kafka', 'client', { oneWay: true })
    assertUnreachable(await produce('cut the other way'), 'cut kafka → client only')
    net.healAll()

    net.setLink('client', false)
    assertUnreachable(await produce('link down'), 'link down')
    net.setLink('client', true)
    const last = await produce('three')
    assert.equal(last.code, 0, last.stderr)
    assert.match(last.stdout, /"offset":"2"/, 'nothing written while cut')
  },
)
