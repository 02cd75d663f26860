// `cortado admin`: the cluster's admin API from the command line (through a router).
//   cortado admin cluster [--router URL]                       nodes and partitions, one line each
//   cortado admin move-master <db> <partition> <node>          planned mastership move
//   cortado admin decommission <node> | recommission <node>   drain a node / let it hold replicas again
//   cortado admin rebalance [--dry-run] [--db <db>]            balance masters by write load now (or only
//                                                              print the moves and per node load before → after)
// A node is added by starting it: `cortado node --id <new> --bootstrap …` joins and gets replicas.

interface ClusterView {
  controller: { id: string | null; epoch: number }
  nodes: {
    id: string
    pid: number
    rack: string | null
    status: string
    decommissioning?: boolean
    replicas?: number | null
  }[]
  databases: {
    name: string
    partitions: {
      partition: number
      generation: number
      master: string | null
      replicas: { node: string; role: string; applied: { generation: number; scn: number } | null }[]
    }[]
  }[]
}

/** A router's base URL, and the Authorization header of `--user` (Basic) or `CORTADO_TOKEN` (Bearer). */
export interface RouterTarget {
  url: string
  authorization?: string
}

async function call(router: RouterTarget, method: string, path: string, body?: unknown): Promise<unknown> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
  if (router.authorization !== undefined) headers.authorization = router.authorization
  const res = await fetch(`${router.url}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const parsed = text.length > 0 ? (JSON.parse(text) as unknown) : undefined
  if (!res.ok) {
    const e = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error
    throw new Error(`${method} ${path}: ${res.status} ${e?.code ?? ''} ${e?.message ?? text}`.trim())
  }
  return parsed
}

export async function admin(router: RouterTarget, args: string[], out: (line: string) => void): Promise<void> {
  const [sub, ...rest] = args
  if (sub === 'cluster') {
    const v = (await call(router, 'GET', '/_admin/cluster')) as ClusterView
    out(`controller ${v.controller.id ?? '(none)'} epoch ${v.controller.epoch}`)
    for (const n of v.nodes)
      out(
        `node ${n.id} ${n.status}${n.decommissioning === true ? ' decommissioning' : ''} pid ${n.pid} rack ${n.rack ?? '-'} replicas ${n.replicas ?? '-'}`,
      )
    for (const db of v.databases) {
      for (const p of db.partitions) {
        const replicas = p.replicas
          .map((r) => `${r.node}:${r.role}${r.applied === null ? '' : `@${r.applied.generation}.${r.applied.scn}`}`)
          .join(' ')
        out(`${db.name}/${p.partition} generation ${p.generation} master ${p.master ?? '-'} replicas ${replicas}`)
      }
    }
    return
  }
  if (sub === 'move-master' && rest.length === 3) {
    const [db, partition, node] = rest
    const p = (await call(
      router,
      'POST',
      `/_admin/databases/${encodeURIComponent(db)}/partitions/${encodeURIComponent(partition)}/master`,
      { node },
    )) as { master: string; generation: number }
    out(`${db}/${partition}: master ${p.master}, generation ${p.generation}`)
    return
  }
  if ((sub === 'decommission' || sub === 'recommission') && rest.length === 1) {
    await call(
      router,
      sub === 'decommission' ? 'POST' : 'DELETE',
      `/_admin/nodes/${encodeURIComponent(rest[0])}/decommission`,
    )
    out(
      sub === 'decommission'
        ? `${rest[0]}: decommissioning (its replicas move to other nodes; see \`cortado admin cluster\`)`
        : `${rest[0]}: may hold replicas again`,
    )
    return
  }
  if (sub === 'rebalance') {
    const { dryRun, db } = rebalanceFlags(rest)
    const query = new URLSearchParams({ ...(db === undefined ? {} : { db }), ...(dryRun ? { dryRun: 'true' } : {}) })
    const plan = (await call(
      router,
      'POST',
      `/_admin/rebalance${query.size > 0 ? `?${query.toString()}` : ''}`,
    )) as RebalancePlan
    printPlan(plan, out)
    return
  }
  throw new AdminUsageError(`unknown admin command: ${args.join(' ') || '(none)'}`)
}

interface RebalancePlan {
  dryRun: boolean
  measuredBy: { controller: string; epoch: number } | null
  settings: { loadImbalanceFactor: number; loadMinWritesPerSec: number; maxConcurrentMoves: number }
  nodes: { node: string; before: number; after: number }[]
  moves: { db: string; partition: number; from: string; to: string; writesPerSec: number }[]
  unmeasured: string[]
}

/** `rebalance`'s flags: --dry-run and --db <name>, nothing else. */
function rebalanceFlags(args: string[]): { dryRun: boolean; db: string | undefined } {
  let dryRun = false
  let db: string | undefined
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--dry-run' && !dryRun) dryRun = true
    else if (args[i] === '--db' && db === undefined && i + 1 < args.length && !args[i + 1].startsWith('--'))
      db = args[++i]
    else
      throw new AdminUsageError(
        `rebalance: unexpected ${JSON.stringify(args[i])} (usage: rebalance [--dry-run] [--db <db>])`,
      )
  }
  return { dryRun, db }
}

function printPlan(plan: RebalancePlan, out: (line: string) => void): void {
  const s = plan.settings
  out(
    `${plan.dryRun ? 'dry run' : 'rebalance requested'}: rates measured by ${plan.measuredBy === null ? '(no controller yet)' : `controller ${plan.measuredBy.controller} epoch ${plan.measuredBy.epoch}`}; moves when the busiest node exceeds the idlest by ${s.loadImbalanceFactor}× and ${s.loadMinWritesPerSec} writes/s, ${s.maxConcurrentMoves} at a time`,
  )
  if (plan.unmeasured.length > 0) out(`waiting for the write rates of ${plan.unmeasured.join(', ')}`)
  for (const m of plan.moves)
    out(`move ${m.db}/${m.partition} master ${m.from} -> ${m.to} (${m.writesPerSec} writes/s)`)
  if (plan.moves.length === 0) out('no moves')
  for (const n of plan.nodes) out(`node ${n.node} master load ${n.before} -> ${n.after} writes/s`)
}

export class AdminUsageError extends Error {
  readonly code = 'USAGE'
}
