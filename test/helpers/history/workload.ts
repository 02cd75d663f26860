// A workload that records a history for the checker (checker.ts): concurrent clients writing
// unique values to a few registers, reading them (from the master, or any replica), and
// incrementing counters by read-modify-write with If-Match, all through the router's HTTP API.
// Outcomes are classified as the checker needs: ok, fail (known not applied) or info (unknown).
import { Pool } from 'undici'
import { isDbErrorCode, RETRIABLE_CODES } from '../../../src/db/errors.ts'
import { type FinalState, type Operation, type Outcome } from './checker.ts'
import { mulberry32 } from '../../../src/util/random.ts'

export const WORKLOAD_TABLES = {
  registers: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'Register',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'value', type: 'string' },
      ],
    },
  },
  counters: {
    key: ['id'],
    schema: {
      type: 'record',
      name: 'Counter',
      fields: [
        { name: 'id', type: 'string' },
        { name: 'n', type: 'long' },
      ],
    },
  },
}

export interface WorkloadOptions {
  /** The router's base URL. */
  url: string
  /** More routers: client i uses `[url, ...moreRouters][i % n]` (the final state is read through `url`). */
  moreRouters?: string[]
  db: string
  clients: number
  registers: number
  counters: number
  durationMs: number
  /** Share of register operations that are reads (default 0.5); a fifth of reads allow any replica. */
  readShare?: number
  /** Share of all operations that are counter increments (default 0.2). */
  incrementShare?: number
  /** Seed of the operation mix. */
  seed?: number
  /** Prefix of the keys (default `w<seed>-`), so runs against one database do not see each other's values. */
  keyPrefix?: string
}

interface HttpAnswer {
  status: number
  etag: string | null
  body: unknown
}

function outcomeOf(a: HttpAnswer | Error): Outcome {
  if (a instanceof Error) return 'info'
  if (a.status >= 200 && a.status < 300) return 'ok'
  const code = (a.body as { error?: { code?: string } } | undefined)?.error?.code
  if (a.status >= 400 && a.status < 500) return 'fail'
  return isDbErrorCode(code) && RETRIABLE_CODES.has(code) ? 'fail' : 'info'
}

export async function runWorkload(o: WorkloadOptions): Promise<{ history: Operation[]; final: FinalState }> {
  const urls = [o.url, ...(o.moreRouters ?? [])]
  const pools = urls.map((url) => new Pool(url, { connections: o.clients + 2 }))
  const start = performance.now()
  const now = () => performance.now() - start
  const request = async (
    method: 'GET' | 'PUT',
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    client = 0,
  ): Promise<HttpAnswer | Error> => {
    try {
      const res = await pools[client % pools.length].request({
        method,
        path,
        body: body === undefined ? undefined : JSON.stringify(body),
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      })
      const text = await res.body.text()
      const etag = res.headers.etag
      return {
        status: res.statusCode,
        etag: typeof etag === 'string' ? etag.replaceAll('"', '') : null,
        body: text.length > 0 ? (JSON.parse(text) as unknown) : undefined,
      }
    } catch (error) {
      return error as Error
    }
  }
  const history: Operation[] = []
  const prefix = o.keyPrefix ?? `w${o.seed ?? 1}-`
  const deadline = o.durationMs
  const readShare = o.readShare ?? 0.5
  const incrementShare = o.incrementShare ?? 0.2
  await Promise.all(
    Array.from({ length: o.clients }, async (_, client) => {
      const rand = mulberry32((o.seed ?? 1) * 1000 + client)
      for (let seq = 0; now() < deadline; seq++) {
        if (o.counters > 0 && rand() < incrementShare) {
          const key = `${prefix}c${Math.floor(rand() * o.counters)}`
          const invokedAt = now()
          let outcome: Outcome = 'info'
          // Read, add one, write back if unchanged; a 412 means someone else got there first: again.
          for (let attempt = 0; attempt < 50; attempt++) {
            const current = await request('GET', `/${o.db}/counters/${key}`, undefined, {}, client)
            if (current instanceof Error || (current.status !== 200 && current.status !== 404)) {
              outcome = current instanceof Error ? 'info' : outcomeOf(current)
              break
            }
            const n = current.status === 200 ? (current.body as { n: number }).n : 0
            const condition: Record<string, string> =
              current.status === 200 ? { 'if-match': `"${current.etag}"` } : { 'if-none-match': '*' }
            const put = await request('PUT', `/${o.db}/counters/${key}`, { id: key, n: n + 1 }, condition, client)
            if (!(put instanceof Error) && put.status === 412) continue
            outcome = outcomeOf(put)
            break
          }
          history.push({ kind: 'increment', key, invokedAt, completedAt: now(), outcome })
          continue
        }
        const key = `${prefix}r${Math.floor(rand() * o.registers)}`
        if (rand() < readShare) {
          const consistency = rand() < 0.2 ? 'any' : 'master'
          const invokedAt = now()
          const res = await request(
            'GET',
            `/${o.db}/registers/${key}${consistency === 'any' ? '?consistency=any' : ''}`,
            undefined,
            {},
            client,
          )
          const found = !(res instanceof Error) && res.status === 200
          const outcome = !(res instanceof Error) && res.status === 404 ? 'ok' : outcomeOf(res)
          history.push({
            kind: 'read',
            key,
            consistency,
            invokedAt,
            completedAt: now(),
            outcome,
            value: found ? (res.body as { value: string }).value : null,
            etag: found ? res.etag : null,
          })
          continue
        }
        const value = `c${client}-${seq}`
        const invokedAt = now()
        const res = await request('PUT', `/${o.db}/registers/${key}`, { id: key, value }, {}, client)
        const outcome = outcomeOf(res)
        history.push({
          kind: 'write',
          key,
          value,
          invokedAt,
          completedAt: now(),
          outcome,
          ...(outcome === 'ok' && !(res instanceof Error) && res.etag !== null ? { etag: res.etag } : {}),
        })
      }
    }),
  )
  // The final state, read from the masters once everything has completed.
  const final: FinalState = { registers: new Map(), counters: new Map() }
  for (let i = 0; i < o.registers; i++) {
    const key = `${prefix}r${i}`
    const res = await request('GET', `/${o.db}/registers/${key}`)
    if (res instanceof Error || (res.status !== 200 && res.status !== 404))
      throw new Error(`final read of ${key} failed: ${res instanceof Error ? res.message : res.status}`)
    final.registers.set(
      key,
      res.status === 200
        ? { value: (res.body as { value: string }).value, etag: res.etag }
        : { value: null, etag: null },
    )
  }
  for (let i = 0; i < o.counters; i++) {
    const key = `${prefix}c${i}`
    const res = await request('GET', `/${o.db}/counters/${key}`)
    if (res instanceof Error || (res.status !== 200 && res.status !== 404))
      throw new Error(`final read of ${key} failed: ${res instanceof Error ? res.message : res.status}`)
    final.counters.set(key, res.status === 200 ? (res.body as { n: number }).n : 0)
  }
  await Promise.all(pools.map((p) => p.close()))
  return { history, final }
}
