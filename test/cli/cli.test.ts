// The `cortado` command as users run it: the quick start, the broker command, bad arguments.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'
import { RawClient, requestFrame } from '../helpers/raw-client.ts'

const MAIN = join(ROOT, 'src', 'cli', 'main.ts')

interface StartedCluster {
  out: () => string
  err: () => string
  exited: Promise<number | null>
  proc: ReturnType<typeof spawn>
  http: string
  broker: string
  metrics: string
}

async function startCommand(args: string[]): Promise<StartedCluster> {
  const proc = spawn(process.execPath, [MAIN, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  let code: number | null | undefined
  void exited.then((c) => (code = c))
  while (!/Ctrl-C/.test(out)) {
    if (code !== undefined) assert.fail(`cortado start exited with ${code}:\n${err.slice(-3000)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const ready = /^cortado ready http=(\S+) broker=(\S+) nodes=\d+ metrics=(\S+)$/m.exec(out)
  assert.ok(ready !== null, out)
  return { out: () => out, err: () => err, exited, proc, http: ready[1], broker: ready[2], metrics: ready[3] }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

interface ClusterNodes {
  nodes: { id: string; pid: number; status: string }[]
}

void test('cortado start runs the broker, three storage nodes and the router; restarts a killed node; stops everything cleanly on SIGTERM', async () => {
  const dataDir = tempDir('start')
  const c = await startCommand([
    '--data-dir',
    dataDir,
    '--broker-port',
    '0',
    '--http-port',
    '0',
    '--metrics-port',
    '0',
    '--insecure',
  ])
  assert.match(c.out(), /Embedded single broker/)
  assert.match(c.err(), /WARNING: --insecure: authentication and authorization are OFF/)
  assert.match(c.out(), /curl -X PUT http:\/\/127\.0\.0\.1:\d+\/_admin\/databases\/shop/)
  // The usage printed works as printed.
  const create = await fetch(`${c.http}/_admin/databases/shop`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      partitions: 4,
      replicas: 3,
      tables: {
        users: {
          key: ['id'],
          schema: {
            type: 'record',
            name: 'User',
            fields: [
              { name: 'id', type: 'string' },
              { name: 'name', type: 'string' },
            ],
          },
        },
      },
    }),
  })
  assert.equal(create.status, 201, await create.text())
  const put = await fetch(`${c.http}/shop/users/u1`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'u1', name: 'Ada' }),
  })
  assert.equal(put.status, 200)
  assert.deepEqual(await (await fetch(`${c.http}/shop/users/u1`)).json(), { id: 'u1', name: 'Ada' })
  // The Kafka side is a real broker: Metadata over the wire, and its metrics.
  const port = Number(c.broker.split(':')[1])
  const raw = await RawClient.connect(port)
  raw.write(requestFrame(3, 1, 1, { topics: null }))
  assert.equal((await raw.nextFrame()).readInt32BE(0), 1)
  raw.close()
  const metrics = await (await fetch(c.metrics)).text()
  assert.match(metrics, /cortado_broker_requests_total\{api="Metadata"\}/)
  assert.match(metrics, /cortado_router_requests_total\{route="\/:db\/:table\/\*",method="PUT",status="200"\} 1/)

  // A storage node killed with SIGKILL is restarted by `cortado start` and serves again.
  const before = ((await (await fetch(`${c.http}/_admin/cluster`)).json()) as ClusterNodes).nodes
  assert.deepEqual(
    before.map((n) => n.status),
    ['up', 'up', 'up'],
  )
  const victim = before[0]
  process.kill(victim.pid, 'SIGKILL')
  let after: ClusterNodes['nodes'] = []
  for (let i = 0; i < 300; i++) {
    after = ((await (await fetch(`${c.http}/_admin/cluster`)).json()) as ClusterNodes).nodes
    const n = after.find((x) => x.id === victim.id)
    if (n !== undefined && n.pid !== victim.pid && n.status === 'up') break
    await new Promise((r) => setTimeout(r, 100))
  }
  assert.notEqual(after.find((x) => x.id === victim.id)?.pid, victim.pid, 'the killed node was restarted')
  assert.deepEqual(await (await fetch(`${c.http}/shop/users/u1?consistency=any`)).json(), { id: 'u1', name: 'Ada' })

  c.proc.kill('SIGTERM')
  assert.equal(await c.exited, 0)
  for (const n of after) assert.ok(!alive(n.pid), `storage node ${n.id} (pid ${n.pid}) stopped with start`)
  assert.ok(!existsSync(join(dataDir, 'broker', '.lock')), 'broker lock released on clean shutdown')
  removeDir(dataDir)
})

void test('cortado start --bootstrap runs against an external Kafka and warns about replication topic settings unsafe for no loss', async () => {
  const broker = await startBroker()
  const dataDir = tempDir('start-ext')
  try {
    const c = await startCommand([
      '--data-dir',
      dataDir,
      '--bootstrap',
      broker.bootstrap,
      '--http-port',
      '0',
      '--metrics-port',
      '0',
      '--nodes',
      '3',
    ])
    assert.equal(c.broker, broker.bootstrap)
    assert.match(
      c.out(),
      /WARNING: topic __cortado_metadata is not safe for no-loss replication: replication factor is 1, needs at least 3; min\.insync\.replicas is \S+, needs at least 2/,
    )
    assert.doesNotMatch(c.out(), /Embedded single broker/)
    c.proc.kill('SIGTERM')
    assert.equal(await c.exited, 0)
  } finally {
    await broker.stop()
    removeDir(dataDir)
    removeDir(broker.dataDir)
  }
})

void test('bad arguments and configs exit with status 2 and say what is wrong', () => {
  const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8' })
  const unknownConfig = run('broker', '--port', '0', '--data-dir', '/tmp/never', '--config', 'bogus.key=1')
  assert.equal(unknownConfig.status, 2)
  assert.match(unknownConfig.stderr, /unknown broker config "bogus.key"/)
  const badValue = run('broker', '--port', '0', '--data-dir', '/tmp/never', '--config', 'num.partitions=lots')
  assert.equal(badValue.status, 2)
  assert.match(badValue.stderr, /num.partitions must be an integer/)
  const noPort = run('broker', '--data-dir', '/tmp/never')
  assert.equal(noPort.status, 2)
  assert.match(noPort.stderr, /--port is required/)
  const unknownCommand = run('frobnicate')
  assert.equal(unknownCommand.status, 2)
  assert.match(unknownCommand.stderr, /usage:/)
})

void test('a second broker on the same data directory is refused', async () => {
  const dataDir = tempDir('lock')
  const first = spawn(process.execPath, [MAIN, 'broker', '--port', '0', '--data-dir', dataDir], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  first.stdout.on('data', (d: Buffer) => (out += d.toString()))
  while (!/ready on/.test(out)) await new Promise((r) => setTimeout(r, 20))
  const second = spawnSync(process.execPath, [MAIN, 'broker', '--port', '0', '--data-dir', dataDir], {
    encoding: 'utf8',
  })
  assert.equal(second.status, 1)
  assert.match(second.stderr, /in use by process/)
  const exited = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)))
  first.kill('SIGTERM')
  assert.equal(await exited, 0)
  removeDir(dataDir)
})

void test("bin/cortado.js runs under the machine's older node (/usr/bin/node) by re-launching Node 24", () => {
  const res = spawnSync('/usr/bin/node', [join(ROOT, 'bin', 'cortado.js'), 'frobnicate'], { encoding: 'utf8' })
  assert.equal(res.status, 2)
  assert.match(res.stderr, /unknown command "frobnicate"/)
})
