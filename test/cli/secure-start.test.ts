// `cortado start` is secure by default: the first start makes the credentials (printed once,
// stored owner-only), the API over HTTPS answers 401 without them and 403 beyond a user's roles,
// every write records its principal in the replication log, and the cluster's own processes reach
// the embedded broker with SCRAM users that hold only the ACLs they need.
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync, statSync } from 'node:fs'
import http from 'node:http'
import https from 'node:https'
import { type Socket } from 'node:net'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { Agent, setGlobalDispatcher } from 'undici'
import { CortadoClient } from '../../src/db/client/cortado-client.ts'
import { type DbError } from '../../src/db/errors.ts'
import { MAIN, removeDir, tempDir } from '../helpers/broker-process.ts'
import { run } from '../helpers/compat.ts'
import { until } from '../helpers/wait.ts'
import { makeCertificates, type TestCertificates } from '../helpers/tls-certs.ts'

interface Started {
  proc: ChildProcess
  out: () => string
  exited: Promise<number | null>
  http: string
  broker: string
}

async function start(args: string[]): Promise<Started> {
  const proc = spawn(process.execPath, [MAIN, 'start', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()))
  let code: number | null | undefined
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (c) => resolve((code = c))))
  while (!/Ctrl-C/.test(out)) {
    if (code !== undefined) assert.fail(`cortado start exited with ${code}:\n${err.slice(-3000)}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  const ready = /^cortado ready http=(\S+) broker=(\S+)/m.exec(out)
  assert.ok(ready !== null, out)
  return { proc, out: () => out, exited, http: ready[1], broker: ready[2] }
}

async function stop(c: Started): Promise<void> {
  c.proc.kill('SIGTERM')
  assert.equal(await c.exited, 0)
}

let certs: TestCertificates
let dataDir: string
let cluster: Started
let adminPassword: string
/** The same data directory and certificates each start (every port chosen afresh). */
const startArgs = () => [
  '--data-dir',
  dataDir,
  '--broker-port',
  '0',
  '--http-port',
  '0',
  '--metrics-port',
  '0',
  '--tls-cert',
  join(certs.dir, 'broker.pem'),
  '--tls-key',
  join(certs.dir, 'broker.key'),
]

interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: { error?: { code: string; message: string } } & Record<string, unknown>
}

/** One HTTPS request to the router, trusting the test CA; `auth` is a user:password or a token. */
function call(method: string, path: string, auth?: string, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {}
  if (auth !== undefined)
    headers.authorization = auth.startsWith('ctd_') ? `Bearer ${auth}` : `Basic ${Buffer.from(auth).toString('base64')}`
  const payload = body === undefined ? undefined : JSON.stringify(body)
  if (payload !== undefined) headers['content-type'] = 'application/json'
  return new Promise((resolve, reject) => {
    const req = https.request(`${cluster.http}${path}`, { method, headers, ca: certs.caPem }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString()
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: (text === '' ? {} : JSON.parse(text)) as Answer['body'],
        })
      })
    })
    req.once('error', reject)
    req.end(payload)
  })
}

const admin = () => `admin:${adminPassword}`
const kcat = (properties: string | undefined, args: string[]) =>
  run('kcat', ['-b', cluster.broker, '-m', '10', ...(properties === undefined ? [] : ['-F', properties]), ...args], {
    timeoutMs: 30_000,
  })
const props = (user: string) => join(dataDir, 'credentials', `${user}.properties`)

const SHOP = {
  partitions: 2,
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
}

before(async () => {
  dataDir = tempDir('secure-start')
  certs = makeCertificates(tempDir('secure-start-certs'))
  cluster = await start(startArgs())
  const shown = /user: admin {2}password: (\S+)/.exec(cluster.out())
  assert.ok(shown !== null, `the first start prints the admin password:\n${cluster.out()}`)
  adminPassword = shown[1]
})

after(async () => {
  if (cluster.proc.exitCode === null) await stop(cluster)
  removeDir(dataDir)
  removeDir(certs.dir)
})

void test('the first start stores the credentials owner-only and serves HTTPS', () => {
  assert.match(cluster.http, /^https:\/\//)
  const dir = join(dataDir, 'credentials')
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  for (const file of ['credentials.json', 'admin.properties', 'cortado-node.properties'])
    assert.equal(statSync(join(dir, file)).mode & 0o777, 0o600, file)
  const stored = JSON.parse(readFileSync(join(dir, 'credentials.json'), 'utf8')) as { admin: { password: string } }
  assert.equal(stored.admin.password, adminPassword)
  assert.match(cluster.out(), /shown once/)
})

void test('requests without credentials or with a wrong password are refused 401 in the API error format', async () => {
  const none = await call('GET', '/_admin/cluster')
  assert.equal(none.status, 401)
  assert.equal(none.body.error?.code, 'UNAUTHENTICATED')
  assert.match(String(none.headers['www-authenticate']), /^Basic realm="cortado"/)
  assert.equal((await call('GET', '/_admin/cluster', 'admin:wrong-password')).status, 401)
  assert.equal((await call('GET', '/_admin/cluster', 'nobody:whatever1')).status, 401)
  // The fast path of document reads and writes refuses alike, before telling whether the database exists.
  assert.equal((await call('GET', '/nodb/users/u1')).status, 401)
  assert.equal((await call('PUT', '/nodb/users/u1', undefined, { id: 'u1' })).status, 401)
  // Health and metrics stay open to probes and scrapers.
  assert.equal((await call('GET', '/_health')).status, 200)
  assert.equal((await call('GET', '/_admin/whoami', admin())).body.name, 'admin')
})

void test('roles per database: write, read, none; cluster admin only for cluster changes; tokens', async () => {
  assert.equal((await call('PUT', '/_admin/databases/shop', admin(), SHOP)).status, 201)
  assert.equal(
    (await call('PUT', '/_admin/users/alice', admin(), { password: 'alice-pass-1', roles: { shop: 'write' } })).status,
    201,
  )
  assert.equal(
    (await call('PUT', '/_admin/users/bob', admin(), { password: 'bob-pass-12', roles: { shop: 'read' } })).status,
    201,
  )
  assert.equal((await call('PUT', '/_admin/users/carol', admin(), { password: 'carol-pass-1' })).status, 201)
  const alice = 'alice:alice-pass-1'
  const bob = 'bob:bob-pass-12'
  const carol = 'carol:carol-pass-1'

  assert.equal((await call('PUT', '/shop/users/u1', alice, { id: 'u1', name: 'Ada' })).status, 200)
  const denied = await call('PUT', '/shop/users/u2', bob, { id: 'u2', name: 'Bo' })
  assert.equal(denied.status, 403)
  assert.equal(denied.body.error?.code, 'FORBIDDEN')
  assert.equal((await call('DELETE', '/shop/users/u1', bob)).status, 403)
  assert.deepEqual((await call('GET', '/shop/users/u1', bob)).body, { id: 'u1', name: 'Ada' })
  assert.equal((await call('POST', '/shop/_multiget', bob, { keys: [{ table: 'users', key: ['u1'] }] })).status, 200)
  assert.equal((await call('GET', '/shop/users/u1', carol)).status, 403)
  assert.equal((await call('PUT', '/_admin/databases/other', alice, SHOP)).status, 403)
  assert.equal((await call('GET', '/_admin/users', alice)).status, 403)
  // A user changes their own password, and nothing else.
  assert.equal((await call('PUT', '/_admin/users/bob', bob, { roles: { shop: 'admin' } })).status, 403)
  assert.equal((await call('PUT', '/_admin/users/bob', bob, { password: 'bob-pass-13' })).status, 200)
  assert.equal((await call('GET', '/shop/users/u1', bob)).status, 401)
  assert.equal((await call('GET', '/shop/users/u1', 'bob:bob-pass-13')).status, 200)
  // Roles change for every router as soon as the metadata log has them.
  assert.equal((await call('PUT', '/_admin/users/carol', admin(), { roles: { shop: 'read' } })).status, 200)
  assert.equal((await call('GET', '/shop/users/u1', carol)).status, 200)

  // A token acts as its user, and stops working once revoked.
  const created = await call('POST', '/_admin/tokens', alice, { description: 'ci' })
  assert.equal(created.status, 201)
  const token = created.body.token as string
  assert.match(token, /^ctd_/)
  assert.equal((await call('PUT', '/shop/users/u3', token, { id: 'u3', name: 'Tok' })).status, 200)
  assert.equal((await call('GET', '/_admin/whoami', token)).body.name, 'alice')
  assert.equal((await call('DELETE', `/_admin/tokens/${String(created.body.id)}`, 'bob:bob-pass-13')).status, 404)
  assert.equal((await call('DELETE', `/_admin/tokens/${String(created.body.id)}`, alice)).status, 204)
  assert.equal((await call('GET', '/shop/users/u3', token)).status, 401)

  // The last cluster admin cannot be deleted.
  const last = await call('DELETE', '/_admin/users/admin', admin())
  assert.equal(last.status, 400)
  assert.equal(last.body.error?.code, 'INVALID_USER')
})

void test('every write records its principal in the replication record', async () => {
  const r = await kcat(props('admin'), ['-C', '-t', 'cortado-db-shop', '-e', '-q', '-f', '%s\n'])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /"principal":"alice"/)
  assert.match(r.stdout, /"id":"u3".*"principal":"alice"|"principal":"alice".*"id":"u3"/)
})

void test('the embedded broker takes only SCRAM clients, and each process of the cluster holds only its ACLs', async () => {
  const anonymous = await kcat(undefined, ['-L'])
  assert.notEqual(anonymous.code, 0, 'an unauthenticated client gets no metadata')
  const listed = await kcat(props('admin'), ['-L'])
  assert.equal(listed.code, 0, listed.stderr)
  assert.match(listed.stdout, /topic "cortado-db-shop"/)
  // The change-topic publisher (its own SCRAM user) made the database's change topic.
  await until(
    'the change topic',
    async () => ((await kcat(props('admin'), ['-L'])).stdout.includes('topic "cortado-cdc-shop"') ? true : undefined),
    30_000,
  )
  const cdc = await kcat(props('admin'), ['-C', '-t', 'cortado-cdc-shop', '-e', '-q', '-f', '%s\n'])
  assert.match(cdc.stdout, /"connector":"cortado"/)
  // The nodes' user may not write outside the replication and metadata topics; the router's may
  // not read the replication topics.
  const stray = await run('kcat', ['-b', cluster.broker, '-F', props('cortado-node'), '-P', '-t', 'stray'], {
    input: 'x\n',
    timeoutMs: 30_000,
  })
  assert.match(stray.stderr, /TOPIC_AUTHORIZATION_FAILED|[Aa]uthoriz/)
  const read = await kcat(props('cortado-router'), ['-C', '-t', 'cortado-db-shop', '-e', '-q'])
  assert.match(read.stderr, /TOPIC_AUTHORIZATION_FAILED|[Aa]uthoriz/)
})

void test('a restart keeps the credentials and does not print the password again', async () => {
  await stop(cluster)
  cluster = await start(startArgs())
  assert.ok(!cluster.out().includes(adminPassword), 'the password is shown only on the first start')
  assert.match(cluster.out(), /credentials\.json/)
  assert.deepEqual((await call('GET', '/shop/users/u1', 'alice:alice-pass-1')).body, { id: 'u1', name: 'Ada' })
  assert.equal((await call('GET', '/_admin/whoami', admin())).body.name, 'admin')
})

void test('cortado admin --user authenticates (password on the command line or in CORTADO_PASSWORD); without it, 401', async () => {
  const admin = (args: string[], env: Record<string, string> = {}) =>
    run(process.execPath, [MAIN, 'admin', 'cluster', '--router', cluster.http, ...args], {
      env: { NODE_EXTRA_CA_CERTS: certs.caFile, ...env },
      timeoutMs: 30_000,
    })
  const withPassword = await admin(['--user', `admin:${adminPassword}`])
  assert.equal(withPassword.code, 0, withPassword.stderr)
  assert.match(withPassword.stdout, /node-1/)
  const fromEnvironment = await admin(['--user', 'admin'], { CORTADO_PASSWORD: adminPassword })
  assert.equal(fromEnvironment.code, 0, fromEnvironment.stderr)
  const refused = await admin([])
  assert.equal(refused.code, 1)
  assert.match(refused.stderr, /401 UNAUTHENTICATED/)
  const noPassword = await admin(['--user', 'admin'])
  assert.equal(noPassword.code, 2)
  assert.match(noPassword.stderr, /CORTADO_PASSWORD/)
})

void test("the storage nodes' internal API and channel answer only calls that carry the cluster secret", async () => {
  const nodes = (await call('GET', '/_admin/cluster', admin())).body.nodes as { id: string; url: string }[]
  assert.equal(nodes.length, 3)
  const secret = readFileSync(join(dataDir, 'credentials', 'cluster.secret'), 'utf8').trim()
  assert.equal(statSync(join(dataDir, 'credentials', 'cluster.secret')).mode & 0o777, 0o600)
  const url = nodes[0].url
  const refused = await fetch(`${url}/_node/status`)
  assert.equal(refused.status, 401)
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'UNAUTHENTICATED')
  assert.equal((await fetch(`${url}/_node/status`, { headers: { 'x-cortado-cluster-secret': 'wrong' } })).status, 401)
  const allowed = await fetch(`${url}/_node/status`, { headers: { 'x-cortado-cluster-secret': secret } })
  assert.equal(allowed.status, 200)
  // The channel's upgrade is refused the same way: a plain 401, no switch of protocol.
  const upgrade = await new Promise<number>((resolve, reject) => {
    const req = http.request(`${url}/_node/rpc`, { headers: { connection: 'Upgrade', upgrade: 'cortado-rpc' } })
    req.once('response', (res) => resolve(res.statusCode ?? 0))
    req.once('upgrade', (_res, socket: Socket) => {
      socket.destroy()
      resolve(101)
    })
    req.once('error', reject)
    req.end()
  })
  assert.equal(upgrade, 401)
  // Prometheus still scrapes a node's metrics.
  assert.equal((await fetch(`${url}/metrics`)).status, 200)
})

void test('cortado consume --user reads the broker as that SASL user (SCRAM-SHA-512); a wrong password is refused', async () => {
  const asAdmin = await run(
    process.execPath,
    [
      MAIN,
      'consume',
      '--bootstrap',
      cluster.broker,
      '--topic',
      'cortado-db-shop',
      '--from-beginning',
      '--count',
      '1',
      '--user',
      'admin',
    ],
    { env: { CORTADO_PASSWORD: adminPassword }, timeoutMs: 60_000 },
  )
  assert.equal(asAdmin.code, 0, asAdmin.stderr)
  // A replication record: a generation's start, or a transaction with its principal.
  assert.match(asAdmin.stdout, /^C.*("node":"node-\d"|"principal":"(alice|admin)")/s)
  const wrong = await run(
    process.execPath,
    [MAIN, 'consume', '--bootstrap', cluster.broker, '--topic', 'cortado-db-shop', '--user', 'admin:not-the-password'],
    { timeoutMs: 60_000 },
  )
  assert.equal(wrong.code, 1)
  assert.match(wrong.stderr, /refused our credentials|[Aa]uthentication/)
})

void test('the client library: authorization for the placement, the cluster secret for the nodes; without them, typed refusals', async () => {
  // The router's HTTPS certificate is the test CA's: the library's HTTP client is told to trust it.
  setGlobalDispatcher(new Agent({ connect: { ca: certs.caPem } }))
  const secret = readFileSync(join(dataDir, 'credentials', 'cluster.secret'), 'utf8').trim()
  const authorization = `Basic ${Buffer.from(admin()).toString('base64')}`
  await assert.rejects(CortadoClient.connect({ router: cluster.http }), (e: DbError) => e.code === 'UNAUTHENTICATED')
  const client = await CortadoClient.connect({ router: cluster.http, authorization, clusterSecret: secret })
  const intruder = await CortadoClient.connect({ router: cluster.http, authorization })
  try {
    await client.put('shop', 'users', 'lib', { id: 'lib', name: 'Library' })
    assert.deepEqual((await client.get('shop', 'users', 'lib'))?.doc, { id: 'lib', name: 'Library' })
    await assert.rejects(
      intruder.put('shop', 'users', 'lib', { id: 'lib', name: 'Intruder' }),
      (e: DbError) => e.code === 'UNAUTHENTICATED',
    )
    assert.deepEqual((await client.get('shop', 'users', 'lib'))?.doc, { id: 'lib', name: 'Library' })
  } finally {
    await client.close()
    await intruder.close()
  }
})

void test('malformed users and credentials are refused with typed errors', async () => {
  const short = await call('PUT', '/_admin/users/dave', admin(), { password: 'short' })
  assert.equal(short.status, 400)
  assert.equal(short.body.error?.code, 'INVALID_USER')
  assert.equal(
    (await call('PUT', '/_admin/users/dave', admin(), { password: 'long-enough', roles: { shop: 'owner' } })).status,
    400,
  )
  assert.equal((await call('PUT', '/_admin/users/dave', admin(), { password: 'long-enough', extra: 1 })).status, 400)
  assert.equal((await call('PUT', '/_admin/users/9bad', admin(), { password: 'long-enough' })).status, 400)
  assert.equal((await call('PUT', '/_admin/users/dave', admin(), { roles: {} })).body.error?.code, 'INVALID_USER')
  // Garbage, oversized and wrong-scheme credentials: 401, and the router keeps serving.
  for (const authorization of ['Basic !!!', 'Bearer ctd_nope', 'Digest x', `Basic ${'A'.repeat(8000)}`, 'Basic'])
    assert.equal(
      await new Promise<number>((resolve, reject) => {
        const req = https.request(
          `${cluster.http}/_admin/whoami`,
          { headers: { authorization }, ca: certs.caPem },
          (res) => {
            res.resume()
            resolve(res.statusCode ?? 0)
          },
        )
        req.once('error', reject)
        req.end()
      }),
      401,
      authorization.slice(0, 20),
    )
  assert.equal((await call('GET', '/_admin/whoami', admin())).status, 200)
})
