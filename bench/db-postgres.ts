// One of the database benchmark's baselines: Debian's PostgreSQL 15, a primary and one synchronous
// streaming standby on localhost, each commit acknowledged only once the standby has flushed it
// (synchronous_commit=on with synchronous_standby_names), fsync on: the same durability promise
// as a Cortado write acknowledged by its replicas. Documents are JSONB rows upserted by key and
// read back from the primary, through the `pg` driver with a pool as large as the concurrency.
//
// Everything lives in one temp dir owned by the `postgres` OS user (PostgreSQL refuses to run as
// root); stop() shuts both servers down and removes the dir.
import { execFile, execFileSync } from 'node:child_process'
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Pool } from 'pg'
import { ensurePackage, isRoot } from './db-install.ts'
import { type ProcessGroup, type Target } from './db-load.ts'

const exec = promisify(execFile)

export const PG_BIN = '/usr/lib/postgresql/15/bin'
export const PG_PACKAGE = 'postgresql-15'
export const INSTALL_HINT =
  `PostgreSQL 15 is not installed (no ${PG_BIN}/postgres). As root, run:\n` +
  `  apt-get update && apt-get install -y ${PG_PACKAGE}\n` +
  '(or scripts/install-bench-db.sh); `npm run bench:db` does this itself when run as root.'

const HOST = '127.0.0.1'
/** The standby's name: its application_name, and what synchronous_standby_names waits for. */
const STANDBY_NAME = 'standby1'

export function postgresInstalled(): boolean {
  return existsSync(join(PG_BIN, 'postgres')) && existsSync(join(PG_BIN, 'pg_basebackup'))
}

/**
 * Makes sure PostgreSQL 15 is there: installs it with apt-get when running as root, else prints
 * what to install. Returns whether it is installed now.
 */
export function ensurePostgres(log: (line: string) => void): Promise<boolean> {
  return ensurePackage('PostgreSQL 15', PG_PACKAGE, postgresInstalled, INSTALL_HINT, log)
}

export interface PostgresOptions {
  /** Where to make the temp dir; it must be reachable by the `postgres` user when run as root. */
  parentDir: string
  primaryPort: number
  standbyPort: number
  concurrency: number
}

export interface PostgresCluster {
  target: Target
  /** `select version()`. */
  version: string
  /** The standby's pg_stat_replication row on the primary, as checked before measuring. */
  replication: string
  /** The durability and sizing settings as the primary reports them (pg_settings). */
  settings: string[]
  /** The postmasters' pids, for counting the servers' CPU (their backends are children). */
  pids(): number[]
  /** The same, the primary apart from the standby. */
  processes(): ProcessGroup[]
  stop(): Promise<void>
}

/** Runs a PostgreSQL tool as the `postgres` user (as ourselves when we are not root). */
async function pgRun(dir: string, tool: string, args: string[]): Promise<string> {
  const [cmd, argv] = isRoot()
    ? ['runuser', ['-u', 'postgres', '--', join(PG_BIN, tool), ...args]]
    : [join(PG_BIN, tool), args]
  try {
    const { stdout } = await exec(cmd, argv, {
      cwd: dir,
      env: { ...process.env, LC_ALL: 'C' },
      maxBuffer: 16 * 1024 * 1024,
    })
    return stdout
  } catch (err) {
    const e = err as { message: string; stderr?: string }
    throw new Error(`${tool} failed: ${e.message}\n${e.stderr ?? ''}`)
  }
}

function postmasterPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(join(dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

const UPSERT = 'INSERT INTO docs (key, doc) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET doc = excluded.doc'
const SELECT = 'SELECT doc FROM docs WHERE key = $1'

/**
 * Starts a primary and a synchronous standby, creates the docs table, and checks that the standby
 * is streaming with sync_state 'sync'. `defer` gets the cleanup as soon as there is something to
 * clean up, so an interrupted start is cleaned up too.
 */
export async function startPostgres(
  o: PostgresOptions,
  defer: (stop: () => Promise<void>) => void,
): Promise<PostgresCluster> {
  const dir = mkdtempSync(join(o.parentDir, 'cortado-bench-pg-'))
  const primary = join(dir, 'primary')
  const standby = join(dir, 'standby')
  // idleTimeoutMillis 0: connections idle in the one-worker scenario stay open, as undici's do.
  const pool = new Pool({
    host: HOST,
    port: o.primaryPort,
    user: 'postgres',
    database: 'postgres',
    max: o.concurrency,
    idleTimeoutMillis: 0,
  })
  // An idle client whose server goes away (at shutdown) must not crash the benchmark.
  pool.on('error', () => {})
  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      // end() waits for clients in use; do not let a stuck query keep the servers running.
      await Promise.race([pool.end().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5000).unref())])
      for (const dataDir of [standby, primary]) {
        if (postmasterPid(dataDir) === undefined) continue
        await pgRun(dir, 'pg_ctl', ['-D', dataDir, '-m', 'fast', '-w', '-t', '30', 'stop'])
          .catch(() => pgRun(dir, 'pg_ctl', ['-D', dataDir, '-m', 'immediate', '-w', 'stop']))
          .catch(() => {})
      }
      rmSync(dir, { recursive: true, force: true })
    })()
    return stopped
  }
  defer(stop)

  if (isRoot()) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    chownSync(dir, uid, gid)
  }

  // --no-sync only skips initdb's own final fsync of the fresh cluster; the server runs with
  // fsync=on. Trust auth on localhost keeps authentication out of the measurement.
  await pgRun(dir, 'initdb', ['-D', primary, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'])
  const maxConnections = Math.max(100, o.concurrency + 20)
  appendFileSync(
    join(primary, 'postgresql.conf'),
    [
      '',
      '# cortado bench:db',
      `listen_addresses = '${HOST}'`,
      `port = ${o.primaryPort}`,
      `unix_socket_directories = '${dir}'`,
      `max_connections = ${maxConnections}`,
      'wal_level = replica',
      'max_wal_senders = 4',
      'fsync = on',
      'synchronous_commit = on',
      `synchronous_standby_names = 'FIRST 1 (${STANDBY_NAME})'`,
      '',
    ].join('\n'),
  )
  await pgRun(dir, 'pg_ctl', ['-D', primary, '-l', join(dir, 'primary.log'), '-w', '-t', '60', 'start'])

  // -R writes standby.signal and primary_conninfo (with our application_name) into the copy.
  await pgRun(dir, 'pg_basebackup', [
    '-d',
    `host=${HOST} port=${o.primaryPort} user=postgres application_name=${STANDBY_NAME}`,
    '-D',
    standby,
    '-R',
    '-X',
    'stream',
    '-c',
    'fast',
    '--no-sync',
  ])
  appendFileSync(
    join(standby, 'postgresql.conf'),
    [
      '',
      "# cortado bench:db standby (later lines win over the primary's copied above)",
      `port = ${o.standbyPort}`,
      "synchronous_standby_names = ''",
      'hot_standby = on',
      '',
    ].join('\n'),
  )
  await pgRun(dir, 'pg_ctl', ['-D', standby, '-l', join(dir, 'standby.log'), '-w', '-t', '60', 'start'])

  // Until the standby streams, a commit on the primary waits; check before creating anything.
  const deadline = Date.now() + 60_000
  let replication = ''
  for (;;) {
    const r = await pool.query<{ application_name: string; state: string; sync_state: string; sync_priority: number }>(
      'SELECT application_name, state, sync_state, sync_priority FROM pg_stat_replication',
    )
    const row = r.rows.find((x) => x.application_name === STANDBY_NAME)
    if (row !== undefined && row.state === 'streaming' && row.sync_state === 'sync') {
      replication = `application_name=${row.application_name} state=${row.state} sync_state=${row.sync_state} sync_priority=${row.sync_priority}`
      break
    }
    if (Date.now() > deadline) {
      throw new Error(
        `the standby did not become a synchronous standby within 60 s: ${JSON.stringify(r.rows)}\n` +
          readFileSync(join(dir, 'standby.log'), 'utf8').slice(-4000),
      )
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }

  await pool.query('CREATE TABLE docs (key text PRIMARY KEY, doc jsonb NOT NULL)')
  const version = (await pool.query<{ version: string }>('SELECT version()')).rows[0].version
  const settings = (
    await pool.query<{ name: string; setting: string; unit: string | null }>(
      `SELECT name, setting, unit FROM pg_settings WHERE name IN ('synchronous_commit', 'synchronous_standby_names', 'fsync',
       'wal_sync_method', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_connections', 'commit_delay', 'wal_buffers')
     ORDER BY name`,
    )
  ).rows.map((s) => `${s.name}=${s.setting}${s.unit !== null ? ` (${s.unit})` : ''}`)

  // Open every connection now, not in the first slice's measured window.
  const clients = await Promise.all(Array.from({ length: o.concurrency }, () => pool.connect()))
  for (const c of clients) c.release()

  const target: Target = {
    name: 'postgres',
    async write(key, doc) {
      // A named statement is parsed and planned once per connection, as any real client would.
      await pool.query({ name: 'upsert', text: UPSERT, values: [key, JSON.stringify(doc)] })
    },
    async read(key) {
      const r = await pool.query<{ doc: object }>({ name: 'select', text: SELECT, values: [key] })
      return r.rows.length > 0 ? r.rows[0].doc : null
    },
  }
  return {
    target,
    version,
    replication,
    settings,
    pids: () => [postmasterPid(primary), postmasterPid(standby)].filter((x) => x !== undefined),
    processes: () => [
      { role: 'pg primary', pids: [postmasterPid(primary)].filter((x) => x !== undefined) },
      { role: 'pg standby', pids: [postmasterPid(standby)].filter((x) => x !== undefined) },
    ],
    stop,
  }
}
