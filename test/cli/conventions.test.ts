// Command-line conventions, for every `cortado` command: --help and -h print the usage and exit 0,
// --version prints the version, and a command that cannot reach its broker or router says what it
// waits for at once and gives up, non-zero, after --connect-timeout; while it waits, a broker that
// comes up is used.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { MAIN, ROOT, removeDir, startBroker, tempDir } from '../helpers/broker-process.ts'

const COMMANDS = [
  'broker',
  'start',
  'node',
  'router',
  'controller',
  'cdc',
  'admin',
  'export',
  'import',
  'backup',
  'restore',
  'produce',
  'consume',
  'audit',
]
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version

const run = (...args: string[]) => spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', input: '' })

function runAsync(args: string[], stdin = ''): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    p.on('exit', (code) => resolve({ code, stdout, stderr }))
    p.stdin.end(stdin)
  })
}

/** A port nothing listens on (a listener bound and closed again). */
async function closedPort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const address = server.address()
  assert.ok(typeof address === 'object' && address !== null)
  await new Promise((r) => server.close(r))
  return address.port
}

void test('cortado --help, -h and help print the usage of every command and exit 0', () => {
  for (const args of [['--help'], ['-h'], ['help']]) {
    const res = run(...args)
    assert.equal(res.status, 0, res.stderr)
    for (const command of COMMANDS)
      assert.match(res.stdout, new RegExp(`^  cortado ${command} `, 'm'), `${args.join(' ')} lists ${command}`)
  }
})

void test("cortado <command> --help and -h print that command's usage and exit 0, for every command", () => {
  for (const command of COMMANDS) {
    for (const flag of ['--help', '-h']) {
      const res = run(command, flag)
      assert.equal(res.status, 0, `${command} ${flag}: ${res.stderr}`)
      assert.match(res.stdout, new RegExp(`^usage: cortado ${command} `), `${command} ${flag}`)
      assert.equal(res.stderr, '')
    }
    // Also after other options, and as `cortado help <command>`.
    assert.match(run(command, '--bootstrap', 'x:1', '--help').stdout, new RegExp(`^usage: cortado ${command} `))
    assert.match(run('help', command).stdout, new RegExp(`^usage: cortado ${command} `))
  }
  const unknown = run('help', 'frobnicate')
  assert.equal(unknown.status, 2)
  assert.match(unknown.stderr, /unknown command "frobnicate"/)
})

void test('cortado --version prints the package version', () => {
  const res = run('--version')
  assert.equal(res.status, 0)
  assert.equal(res.stdout, `cortado ${VERSION}\n`)
})

void test("a mistake in a command's options prints that command's usage and exits 2", () => {
  const res = run('produce', '--topic', 't', '--bogus')
  assert.equal(res.status, 2)
  assert.match(res.stderr, /^cortado: Unknown option '--bogus'/)
  assert.match(res.stderr, /usage: cortado produce /)
  const timeout = run('produce', '--bootstrap', 'x:1', '--topic', 't', '--connect-timeout', 'soon')
  assert.equal(timeout.status, 2)
  assert.match(timeout.stderr, /--connect-timeout must be a number of seconds, got "soon"/)
  const kafka = ['--bootstrap', '127.0.0.1:1']
  const required: Record<string, string[]> = {
    start: kafka,
    node: ['--id', 'n1', '--data-dir', 'unused', ...kafka],
    router: kafka,
    controller: ['--id', 'c1', ...kafka],
  }
  for (const [command, args] of Object.entries(required)) {
    const wait = run(command, ...args, '--fetch-max-wait-ms', '0')
    assert.equal(wait.status, 2, command)
    assert.match(wait.stderr, /--fetch-max-wait-ms must be a positive integer, got "0"/, command)
    assert.match(wait.stdout + wait.stderr, /\[--fetch-max-wait-ms <ms>/, command)
  }
})

void test(
  'every command that needs Kafka or a router says what it waits for and gives up after --connect-timeout',
  { timeout: 60_000 },
  async () => {
    const port = await closedPort()
    const kafka = `127.0.0.1:${port}`
    const dir = tempDir('unreachable')
    const router = `http://127.0.0.1:${port}`
    const importFile = join(dir, 'import.ndjson')
    writeFileSync(importFile, '{"id": "a"}\n')
    const cases: [string, string[]][] = [
      ['produce', ['produce', '--bootstrap', kafka, '--topic', 't']],
      ['consume', ['consume', '--bootstrap', kafka, '--topic', 't']],
      ['audit', ['audit', '--bootstrap', kafka, '--topic', 't', '--group', 'g', '--from', '0', '--to', '1']],
      ['node', ['node', '--id', 'n1', '--data-dir', join(dir, 'n1'), '--bootstrap', kafka]],
      ['router', ['router', '--bootstrap', kafka, '--http-port', '0']],
      ['controller', ['controller', '--id', 'c1', '--bootstrap', kafka]],
      ['cdc', ['cdc', '--bootstrap', kafka]],
      [
        'start',
        ['start', '--bootstrap', kafka, '--data-dir', join(dir, 'start'), '--http-port', '0', '--metrics-port', '0'],
      ],
      ['admin', ['admin', 'cluster', '--router', router]],
      ['export', ['export', 'db', '--out', join(dir, 'export.ndjson'), '--router', router]],
      ['import', ['import', 'db', '--table', 't', '--file', importFile, '--router', router]],
      ['backup', ['backup', 'db', '--to', join(dir, 'backup'), '--router', router]],
      ['restore', ['restore', '--from', join(dir, 'backup'), '--db', 'x', '--router', router]],
    ]
    try {
      const results = await Promise.all(cases.map(([, args]) => runAsync([...args, '--connect-timeout', '2'], 'x\n')))
      results.forEach((res, i) => {
        const [name] = cases[i]
        const target = ['admin', 'export', 'import', 'backup', 'restore'].includes(name)
          ? `the router at ${router}`
          : `Kafka at ${kafka}`
        assert.equal(res.code, 1, `${name}: ${res.stderr}`)
        assert.ok(
          res.stderr.includes(`cortado: waiting for ${target}: `),
          `${name} says what it waits for:\n${res.stderr}`,
        )
        assert.ok(res.stderr.includes(`cortado: cannot reach ${target} after 2 s`), `${name} gives up:\n${res.stderr}`)
      })
    } finally {
      removeDir(dir)
    }
  },
)

void test('a command started before its broker waits for it, then works', { timeout: 60_000 }, async () => {
  const port = await closedPort()
  const produced = runAsync(
    ['produce', '--bootstrap', `127.0.0.1:${port}`, '--topic', 'late', '--connect-timeout', '30'],
    'hello\n',
  )
  await new Promise((r) => setTimeout(r, 1500))
  const broker = await startBroker({ port })
  try {
    const res = await produced
    assert.equal(res.code, 0, res.stderr)
    assert.match(res.stderr, /cortado: waiting for Kafka at 127\.0\.0\.1:\d+: /)
    assert.match(res.stdout, /^\{"partition":0,"offset":"0"/)
  } finally {
    assert.equal(await broker.stop(), 0)
    removeDir(broker.dataDir)
  }
})

void test(
  'cortado produce whose broker dies mid-stream says it waits for acknowledgements, then gives up and exits 1',
  { timeout: 60_000 },
  async () => {
    const broker = await startBroker()
    const p = spawn(
      process.execPath,
      [MAIN, 'produce', '--bootstrap', broker.bootstrap, '--topic', 'stall', '--connect-timeout', '5'],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    )
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const exited = new Promise<number | null>((resolve) => p.on('exit', resolve))
    try {
      p.stdin.write('first\n')
      while (!stdout.includes('"offset":"0"')) await new Promise((r) => setTimeout(r, 50))
      await broker.kill()
      p.stdin.write('second\n') // stdin stays open: the command must not wait for more input to give up
      assert.equal(await exited, 1, stderr)
      assert.match(
        stderr,
        /cortado: waiting for Kafka at 127\.0\.0\.1:\d+ to acknowledge 1 message \(none for \d+ s; giving up in \d+ s\)/,
      )
      assert.match(stderr, /cortado: giving up: Kafka at 127\.0\.0\.1:\d+ acknowledged nothing for \d+ s/)
      assert.match(stderr, /cortado: message not acknowledged: .*the producer is closed/)
      assert.equal(stdout.trim().split('\n').length, 1, 'only the first message was acknowledged')
      assert.match(stderr, /cortado: audit counts not published: /)
    } finally {
      p.kill('SIGKILL')
      removeDir(broker.dataDir)
    }
  },
)
