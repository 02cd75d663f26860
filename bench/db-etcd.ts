// The database benchmark's second baseline: Debian's etcd (package etcd-server, 3.4 in Debian 12),
// a three-member cluster on localhost. Like a Cortado database of 3 replicas, a write is
// acknowledged once a majority of the three has it on disk (Raft, every member fsyncs its WAL: etcd
// as shipped, no unsafe flag), and a read is linearizable (etcd's default: the member confirms
// with the leader that it has applied everything committed before answering).
//
// Documents are written and read through etcd's JSON gateway to its gRPC API (POST /v3/kv/put and
// /v3/kv/range, keys and values in base64), with undici. Requests go round robin over the three
// members, as etcd's own client balancer does; a follower forwards writes to the leader itself.
//
// Each member has its own data directory under one temp dir; stop() stops the members and
// removes the dir.
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { Pool, request } from 'undici'
import { ensurePackage } from './db-install.ts'
import { type ProcessGroup, type Target } from './db-load.ts'

const exec = promisify(execFile)

export const ETCD_BIN = '/usr/bin/etcd'
export const ETCD_PACKAGE = 'etcd-server'
export const ETCD_INSTALL_HINT =
  `etcd is not installed (no ${ETCD_BIN}). As root, run:\n` +
  `  apt-get update && apt-get install -y ${ETCD_PACKAGE}\n` +
  '(or scripts/install-bench-db.sh); `npm run bench:db` does this itself when run as root.'

const HOST = '127.0.0.1'
/** etcd 3.4 serves its gateway under /v3/ (and the older /v3beta/); 3.5 dropped /v3beta/. */
const GATEWAY = '/v3'
const MEMBERS = 3

export function etcdInstalled(): boolean {
  return existsSync(ETCD_BIN)
}

/**
 * Makes sure etcd is there: installs etcd-server with apt-get when running as root, else prints
 * what to install. Returns whether it is installed now.
 */
export function ensureEtcd(log: (line: string) => void): Promise<boolean> {
  return ensurePackage('etcd', ETCD_PACKAGE, etcdInstalled, ETCD_INSTALL_HINT, log)
}

const base64 = (text: string) => Buffer.from(text).toString('base64')

/** An etcd gateway answer: uint64 fields come as decimal strings, bytes as base64. */
interface RangeAnswer {
  kvs?: { value?: string }[]
}
interface StatusAnswer {
  header: { member_id: string }
  leader: string
  version: string
}

export interface EtcdTarget {
  target: Target
  close(): Promise<void>
}

/**
 * A Target over etcd's JSON gateway: a document is the value under its key; a missing key reads as
 * null. Requests go round robin over `clientUrls`, on keep-alive pools of `connections` in all
 * (at least one per member).
 */
export function etcdTarget(clientUrls: string[], connections: number): EtcdTarget {
  const pools = clientUrls.map(
    (url, i) =>
      new Pool(url, {
        connections: Math.max(
          1,
          Math.floor(connections / clientUrls.length) + (i < connections % clientUrls.length ? 1 : 0),
        ),
        pipelining: 1,
        keepAliveTimeout: 60_000,
      }),
  )
  let next = 0
  const post = async (path: string, body: object): Promise<string> => {
    const pool = pools[next]
    next = (next + 1) % pools.length
    const res = await pool.request({
      path: GATEWAY + path,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
    const text = await res.body.text()
    if (res.statusCode !== 200) throw new Error(`POST ${GATEWAY}${path}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)
    return text
  }
  return {
    target: {
      name: 'etcd',
      async write(key, doc) {
        await post('/kv/put', { key: base64(key), value: base64(JSON.stringify(doc)) })
      },
      async read(key) {
        const answer = JSON.parse(await post('/kv/range', { key: base64(key) })) as RangeAnswer
        const kv = answer.kvs?.[0]
        if (kv === undefined) return null
        return JSON.parse(Buffer.from(kv.value ?? '', 'base64').toString()) as object
      },
    },
    close: async () => {
      await Promise.all(pools.map((p) => p.close()))
    },
  }
}

export interface EtcdOptions {
  parentDir: string
  /** One client port per member. */
  clientPorts: number[]
  /** One peer (Raft) port per member. */
  peerPorts: number[]
  concurrency: number
}

export interface EtcdCluster {
  target: Target
  /** The etcd binary's version lines, joined. */
  version: string
  clientUrls: string[]
  /** The members' processes: the current leader apart from the followers. */
  processes(): Promise<ProcessGroup[]>
  pids(): number[]
  stop(): Promise<void>
}

async function status(url: string): Promise<StatusAnswer> {
  const res = await request(`${url}${GATEWAY}/maintenance/status`, { method: 'POST', body: '{}' })
  const text = await res.body.text()
  if (res.statusCode !== 200) throw new Error(`status of ${url}: HTTP ${res.statusCode} ${text.slice(0, 300)}`)
  return JSON.parse(text) as StatusAnswer
}

const alive = (p: ChildProcess) => p.exitCode === null && p.signalCode === null

/**
 * Starts three members, waits until each reports a leader and a write reads back, and returns the
 * cluster. `defer` gets the cleanup as soon as there is something to clean up.
 */
export async function startEtcd(o: EtcdOptions, defer: (stop: () => Promise<void>) => void): Promise<EtcdCluster> {
  const dir = mkdtempSync(join(o.parentDir, 'cortado-bench-etcd-'))
  const names = Array.from({ length: MEMBERS }, (_, i) => `m${i + 1}`)
  const clientUrls = names.map((_, i) => `http://${HOST}:${o.clientPorts[i]}`)
  const peerUrls = names.map((_, i) => `http://${HOST}:${o.peerPorts[i]}`)
  const initialCluster = names.map((name, i) => `${name}=${peerUrls[i]}`).join(',')
  // A fresh token per cluster, so members of two runs could never join each other.
  const token = `cortado-bench-${randomBytes(6).toString('hex')}`
  const client = etcdTarget(clientUrls, o.concurrency)

  const members = names.map((name, i) => {
    const logFile = join(dir, `${name}.log`)
    const fd = openSync(logFile, 'a')
    const proc = spawn(
      ETCD_BIN,
      [
        `--name=${name}`,
        `--data-dir=${join(dir, name)}`,
        `--listen-client-urls=${clientUrls[i]}`,
        `--advertise-client-urls=${clientUrls[i]}`,
        `--listen-peer-urls=${peerUrls[i]}`,
        `--initial-advertise-peer-urls=${peerUrls[i]}`,
        `--initial-cluster=${initialCluster}`,
        `--initial-cluster-token=${token}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-outputs=stderr',
        '--log-level=warn',
      ],
      { stdio: ['ignore', fd, fd] },
    )
    closeSync(fd)
    // A spawn that fails (no binary) ends the member as an exit would.
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()).once('error', () => resolve()))
    return { name, proc, exited, logFile }
  })
  const logTails = () =>
    members.map((m) => `${m.name}:\n${existsSync(m.logFile) ? readFileSync(m.logFile, 'utf8').slice(-2000) : ''}`)

  let stopped: Promise<void> | undefined
  const stop = () => {
    stopped ??= (async () => {
      await client.close().catch(() => {})
      // One at a time: a leader told to stop hands leadership to a member that is still running,
      // which is quick; with its followers stopping too it would wait for them in vain.
      for (const m of members) {
        if (!alive(m.proc)) continue
        m.proc.kill('SIGTERM')
        const timer = setTimeout(() => m.proc.kill('SIGKILL'), 10_000)
        await m.exited
        clearTimeout(timer)
      }
      rmSync(dir, { recursive: true, force: true })
    })()
    return stopped
  }
  defer(stop)

  // Every member up and seeing a leader, then one write read back through each.
  const deadline = Date.now() + 60_000
  const memberIds: string[] = []
  for (const [i, m] of members.entries()) {
    for (;;) {
      if (!alive(m.proc)) throw new Error(`etcd member ${m.name} exited before it was ready:\n${logTails().join('\n')}`)
      try {
        const s = await status(clientUrls[i])
        if (s.leader !== '0' && s.leader !== '') {
          memberIds[i] = s.header.member_id
          break
        }
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`etcd did not elect a leader within 60 s:\n${logTails().join('\n')}`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  for (let i = 0; i < MEMBERS; i++) {
    const doc = { id: 'cortado-bench-check', member: i }
    await client.target.write(doc.id, doc)
    const back = await client.target.read(doc.id)
    if (JSON.stringify(back) !== JSON.stringify(doc))
      throw new Error(`etcd read back ${JSON.stringify(back)} for ${JSON.stringify(doc)}`)
  }
  const { stdout } = await exec(ETCD_BIN, ['--version'])
  const version = stdout
    .split('\n')
    .filter((l) => /^(etcd Version|Go Version|Go OS\/Arch):/.test(l))
    .join(', ')

  return {
    target: client.target,
    version,
    clientUrls,
    async processes() {
      let leader = ''
      for (const url of clientUrls) {
        try {
          leader = (await status(url)).leader
          break
        } catch {
          // ask the next member
        }
      }
      const pids = (keep: (i: number) => boolean) =>
        members.flatMap((m, i) => (keep(i) && m.proc.pid !== undefined ? [m.proc.pid] : []))
      const leaderIndex = memberIds.indexOf(leader)
      if (leaderIndex === -1) return [{ role: 'etcd members', pids: pids(() => true) }]
      return [
        { role: 'etcd leader', pids: pids((i) => i === leaderIndex) },
        { role: 'etcd followers', pids: pids((i) => i !== leaderIndex) },
      ]
    },
    pids: () => members.flatMap((m) => (alive(m.proc) && m.proc.pid !== undefined ? [m.proc.pid] : [])),
    stop,
  }
}
