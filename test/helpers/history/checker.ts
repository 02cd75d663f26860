// A history checker in the style of Jepsen's (docs/reference/anchors.md §5), for Cortado's
// documents.
//
// A workload records every request as an operation: when it was invoked, when it completed, and
// its outcome — `ok` (acknowledged), `fail` (known not applied: a 4xx, or a 503 the database
// guarantees was not applied) or `info` (outcome unknown: a timeout, a dropped connection). The
// checker needs no model of the database beyond one fact Cortado gives: every acknowledged write
// returns an ETag "generation.scn", and within a partition (generation, scn) strictly increases
// in the order the log applies transactions. So versions of a key are totally ordered, and:
//
// - lost write: an acknowledged write whose version is newer than the key's final version (the
//   final read happened after every write completed, so it must see it or something newer);
// - stale read: a read from the master that returned a version older than a write acknowledged
//   before the read was invoked (reads with consistency=any may be stale, and are not checked);
// - lost update: the final value of a counter incremented with If-Match differs from the number
//   of acknowledged increments (each increment reads the version it replaces, so two increments
//   from the same version would both be acknowledged only if one overwrote the other);
// - duplicate: one written value observed under two different versions (a write applied twice);
// - phantom: a read returning a value no write of that key ever sent;
// - mismatch: a read returning a version that an acknowledged write got, with another value.
//
// Pure: operations in, report out.

export type Outcome = 'ok' | 'fail' | 'info'

export interface WriteOp {
  kind: 'write'
  key: string
  /** The value written: unique per write in a workload, so reads can be traced to writes. */
  value: string
  invokedAt: number
  completedAt: number
  outcome: Outcome
  /** The version acknowledged ("generation.scn"), for an ok write. */
  etag?: string
}

export interface ReadOp {
  kind: 'read'
  key: string
  consistency: 'master' | 'any'
  invokedAt: number
  completedAt: number
  outcome: Outcome
  /** For an ok read: the value and version found, or null for no document. */
  value?: string | null
  etag?: string | null
}

/** An increment by read-modify-write with If-Match, of a counter document. */
export interface IncrementOp {
  kind: 'increment'
  key: string
  invokedAt: number
  completedAt: number
  outcome: Outcome
}

export type Operation = WriteOp | ReadOp | IncrementOp

export interface FinalState {
  /** Per register key: the final value and version (read after everything completed). */
  registers: Map<string, { value: string | null; etag: string | null }>
  /** Per counter key: the final count. */
  counters: Map<string, number>
}

export interface Anomaly {
  kind: 'lost-write' | 'stale-read' | 'lost-update' | 'duplicate' | 'phantom' | 'mismatch'
  key: string
  detail: string
}

export interface Report {
  valid: boolean
  anomalies: Anomaly[]
  counts: {
    writes: number
    acknowledged: number
    failed: number
    unknown: number
    reads: number
    staleAllowedReads: number
    increments: number
  }
}

/** Compares versions "g.s" (null, no document, is older than any). */
export function compareVersions(a: string | null, b: string | null): number {
  if (a === b) return 0
  if (a === null) return -1
  if (b === null) return 1
  const [ag, as] = a.split('.').map(Number)
  const [bg, bs] = b.split('.').map(Number)
  return ag !== bg ? ag - bg : as - bs
}

export function checkHistory(ops: readonly Operation[], final: FinalState): Report {
  const anomalies: Anomaly[] = []
  const writes = ops.filter((o): o is WriteOp => o.kind === 'write')
  const reads = ops.filter((o): o is ReadOp => o.kind === 'read')
  const increments = ops.filter((o): o is IncrementOp => o.kind === 'increment')
  const acked = writes.filter((w) => w.outcome === 'ok')

  // Values each key was ever sent (any outcome), and the version each acknowledged value got.
  const sent = new Map<string, Set<string>>()
  for (const w of writes) {
    let s = sent.get(w.key)
    if (s === undefined) sent.set(w.key, (s = new Set()))
    s.add(w.value)
  }
  const ackedVersion = new Map<string, string>() // key\0etag -> value
  for (const w of acked) if (w.etag !== undefined) ackedVersion.set(`${w.key}\u0000${w.etag}`, w.value)

  // Lost writes: the final version must be at least every acknowledged write's.
  for (const w of acked) {
    const f = final.registers.get(w.key)
    if (f === undefined || w.etag === undefined) continue
    if (compareVersions(f.etag, w.etag) < 0)
      anomalies.push({
        kind: 'lost-write',
        key: w.key,
        detail: `write of ${w.value} acknowledged as ${w.etag}; final version ${f.etag ?? 'none'}`,
      })
  }

  // Reads: phantoms, mismatches, duplicates; stale reads from the master.
  const versionsOfValue = new Map<string, Set<string>>()
  const observations = [
    ...reads
      .filter((r) => r.outcome === 'ok')
      .map((r) => ({ key: r.key, value: r.value ?? null, etag: r.etag ?? null })),
  ]
  for (const [key, f] of final.registers) observations.push({ key, value: f.value, etag: f.etag })
  for (const o of observations) {
    if (o.value === null) continue
    if (!(sent.get(o.key)?.has(o.value) ?? false))
      anomalies.push({ kind: 'phantom', key: o.key, detail: `read ${o.value}, which no write of ${o.key} sent` })
    const expected = o.etag === null ? undefined : ackedVersion.get(`${o.key}\u0000${o.etag}`)
    if (expected !== undefined && expected !== o.value)
      anomalies.push({
        kind: 'mismatch',
        key: o.key,
        detail: `version ${o.etag} was acknowledged for ${expected} but read as ${o.value}`,
      })
    if (o.etag !== null) {
      const id = `${o.key}\u0000${o.value}`
      let s = versionsOfValue.get(id)
      if (s === undefined) versionsOfValue.set(id, (s = new Set()))
      s.add(o.etag)
    }
  }
  for (const [id, versions] of versionsOfValue) {
    if (versions.size > 1) {
      const [key, value] = id.split('\u0000')
      anomalies.push({ kind: 'duplicate', key, detail: `${value} seen under versions ${[...versions].join(', ')}` })
    }
  }
  const byKey = new Map<string, WriteOp[]>()
  for (const w of acked) {
    let l = byKey.get(w.key)
    if (l === undefined) byKey.set(w.key, (l = []))
    l.push(w)
  }
  for (const r of reads) {
    if (r.outcome !== 'ok' || r.consistency !== 'master') continue
    // The newest version acknowledged before this read was invoked.
    let floor: WriteOp | undefined
    for (const w of byKey.get(r.key) ?? []) {
      if (
        w.completedAt < r.invokedAt &&
        (floor === undefined || compareVersions(w.etag ?? null, floor.etag ?? null) > 0)
      )
        floor = w
    }
    if (floor !== undefined && compareVersions(r.etag ?? null, floor.etag ?? null) < 0) {
      anomalies.push({
        kind: 'stale-read',
        key: r.key,
        detail: `read at ${r.invokedAt} returned ${r.etag ?? 'nothing'}, older than ${floor.etag} acknowledged at ${floor.completedAt}`,
      })
    }
  }

  // Lost updates: every acknowledged increment counted, and no more than were attempted.
  const incByKey = new Map<string, { ok: number; maybe: number }>()
  for (const i of increments) {
    const c = incByKey.get(i.key) ?? { ok: 0, maybe: 0 }
    if (i.outcome === 'ok') c.ok++
    if (i.outcome === 'info') c.maybe++
    incByKey.set(i.key, c)
  }
  for (const [key, c] of incByKey) {
    const value = final.counters.get(key) ?? 0
    if (value < c.ok || value > c.ok + c.maybe) {
      anomalies.push({
        kind: 'lost-update',
        key,
        detail: `${c.ok} increments acknowledged (${c.maybe} unknown), final count ${value}`,
      })
    }
  }

  return {
    valid: anomalies.length === 0,
    anomalies,
    counts: {
      writes: writes.length,
      acknowledged: acked.length,
      failed: writes.filter((w) => w.outcome === 'fail').length,
      unknown: writes.filter((w) => w.outcome === 'info').length,
      reads: reads.length,
      staleAllowedReads: reads.filter((r) => r.consistency === 'any').length,
      increments: increments.length,
    },
  }
}
