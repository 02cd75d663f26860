// The `cortado` command as users run it: the quick start, the broker command, bad arguments.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ROOT, removeDir, tempDir } from '../helpers/broker-process.ts'
import { RawClient, requestFrame } from '../helpers/raw-client.ts'

const MAIN = join(ROOT, 'src', 'cli', 'main.ts')

void test('cortado start runs a broker, serves metrics, prints how to use it, and stops cleanly on SIGTERM', async () => {
  const dataDir = tempDir('start')
  const proc = spawn(process.execPath, [MAIN, 'start', '--data-dir', dataDir, '--broker-port', '0', '--metrics-port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  while (!/Ctrl-C/.test(out)) await new Promise((r) => setTimeout(r, 20))
  const port = Number(/ready on 127\.0\.0\.1:(\d+)/.exec(out)![1])
  const metricsPort = Number(/curl http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(out)![1])
  assert.match(out, /kcat -P -b 127\.0\.0\.1:\d+/)
  const c = await RawClient.connect(port)
  c.write(requestFrame(3, 1, 1, { topics: null }))
  assert.equal((await c.nextFrame()).readInt32BE(0), 1)
  c.close()
  const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
  assert.match(metrics, /cortado_broker_requests_total\{api="Metadata"\} 1/)
  assert.match(metrics, /process_cpu_seconds_total/)
  proc.kill('SIGTERM')
  assert.equal(await exited, 0)
  assert.ok(!existsSync(join(dataDir, '.lock')), 'lock released on clean shutdown')
  removeDir(dataDir)
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
  const first = spawn(process.execPath, [MAIN, 'broker', '--port', '0', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  first.stdout.on('data', (d: Buffer) => (out += d.toString()))
  while (!/ready on/.test(out)) await new Promise((r) => setTimeout(r, 20))
  const second = spawnSync(process.execPath, [MAIN, 'broker', '--port', '0', '--data-dir', dataDir], { encoding: 'utf8' })
  assert.equal(second.status, 1)
  assert.match(second.stderr, /in use by process/)
  const exited = new Promise<number | null>((resolve) => first.once('exit', (code) => resolve(code)))
  first.kill('SIGTERM')
  assert.equal(await exited, 0)
  removeDir(dataDir)
})

void test('bin/cortado.js runs under the machine\'s older node (/usr/bin/node) by re-launching Node 24', () => {
  const res = spawnSync('/usr/bin/node', [join(ROOT, 'bin', 'cortado.js'), 'frobnicate'], { encoding: 'utf8' })
  assert.equal(res.status, 2)
  assert.match(res.stderr, /unknown command "frobnicate"/)
})
