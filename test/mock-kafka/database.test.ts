// `cortado start --bootstrap` on librdkafka's three-broker mock cluster (test/helpers/
// mock-kafka.ts), which offers neither CreateTopics nor DescribeConfigs: the topics are created
// beforehand, as an operator of a locked-down Kafka would. The database comes up, says that it
// could not check the topics' configs, and serves writes and reads through the HTTP API while the
// leaders of its topics move across the brokers. `--node-session-ms` reaches every node it runs,
// and `--fetch-max-wait-ms` keeps writes fast on a Kafka that holds a fetch for its whole wait.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { after, before, test } from 'node:test'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { startMockKafka, type MockKafka } from '../helpers/mock-kafka.ts'

const PARTITIONS = 4
let mock: MockKafka

before(async () => {
  mock = await startMockKafka(3)
  await mock.topic('__cortado_metadata', 1, 3)
  await mock.topic('cortado-db-shop', PARTITIONS, 3)
})

after(async () => {
  await mock.stop()
})

void test('cortado start --bootstrap <mock>: topics made beforehand, documents written and read while leaders move', async (t) => {
  const dir = tempDir('mock-start')
  const proc = spawn(
    process.execPath,
    [
      MAIN,
      'start',
      '--bootstrap',
      mock.bootstrap,
      '--data-dir',
      dir,
      '--http-port',
      '0',
      '--metrics-port',
      '0',
      '--node-session-ms',
      '2000',
      '--fetch-max-wait-ms',
      '50',
      '--insecure',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CORTADO_LOG_LEVEL: 'warn' } },
  )
  let out = ''
  let err = ''
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  try {
    const url = await new Promise<string>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d.toString()
        const m = /^cortado ready http=(\S+)/m.exec(out)
        if (m !== null) resolve(m[1])
      })
      void exited.then((code) => reject(new Error(`cortado start exited with ${code}:\n${err.slice(-5000)}`)))
    })
    await new Promise((r) => setTimeout(r, 200)) // the rest of the ready message
    assert.match(
      out,
      /WARNING: topic __cortado_metadata is not safe for no-loss replication: min\.insync\.replicas and unclean\.leader\.election\.enable could not be checked: DescribeConfigs failed/,
    )
    const http = async (method: string, path: string, body?: unknown) => {
      const res = await fetch(`${url}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      })
      const text = await res.text()
      return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) }
    }
    const created = await http('PUT', '/_admin/databases/shop', {
      partitions: PARTITIONS,
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
    })
    assert.ok(created.status < 300, `database created: ${created.status} ${JSON.stringify(created.body)}`)

    const view = (await http('GET', '/_admin/cluster')).body as { nodes: { id: string; sessionMs: number }[] }
    assert.deepEqual(
      view.nodes.map((n) => n.sessionMs),
      [2000, 2000, 2000],
      'every node runs with the session given to cortado start',
    )

    const written = new Map<string, string>()
    const retried = new Map<number, number>()
    for (let i = 0; i < 24; i++) {
      // Every third write, one partition's leader (or the metadata topic's) moves to another broker.
      if (i % 3 === 0) {
        const step = i / 3
        await mock.leader('cortado-db-shop', step % PARTITIONS, (step % 3) + 1)
        await mock.leader('__cortado_metadata', 0, ((step + 1) % 3) + 1)
      }
      const id = `u${i}`
      const name = `name-${i}`
      let res = await http('PUT', `/shop/users/${id}`, { id, name })
      // A write the router could not get acknowledged in time is answered 503 (not applied) and may
      // be retried; one whose master lost its lease while the metadata topic's leader moved is
      // answered 504 (outcome unknown), and this PUT of the same document is safe to repeat.
      for (let attempt = 0; (res.status === 503 || res.status === 504) && attempt < 20; attempt++) {
        retried.set(res.status, (retried.get(res.status) ?? 0) + 1)
        await new Promise((r) => setTimeout(r, 250))
        res = await http('PUT', `/shop/users/${id}`, { id, name })
      }
      assert.ok(res.status < 300, `write ${id}: ${res.status} ${JSON.stringify(res.body)}`)
      written.set(id, name)
    }
    t.diagnostic(`writes retried, by answer: ${JSON.stringify(Object.fromEntries(retried))}`)
    for (const [id, name] of written) {
      const res = await http('GET', `/shop/users/${id}`)
      assert.equal(res.status, 200, `read ${id}`)
      assert.equal((res.body as { name: string }).name, name)
    }
  } finally {
    proc.kill('SIGTERM')
    const code = await exited
    removeDir(dir)
    assert.equal(code, 0, `cortado start stopped cleanly:\n${err.slice(-3000)}`)
  }
})
