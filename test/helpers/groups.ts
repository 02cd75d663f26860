// Shared pieces of the consumer-group compatibility tests (test/compat/groups-*.test.ts): a group
// member running as a child process (a Python script, a node fixture or kcat) whose output is
// parsed into events, the rebalance / member-death / broker-restart scenario they all go through,
// and the delivery checks (every acknowledged record consumed, in order per partition, duplicates
// only past a killed member's last commit).
//
// Member processes written for these tests print one JSON object per line on stdout:
//   {"ev":"assigned","partitions":[0,2]}        the full assignment after a rebalance
//   {"ev":"revoked","partitions":[0,2]}         partitions taken away (eager protocols: all)
//   {"ev":"record","partition":0,"offset":5,"key":"k5","value":"p1-5"}
//   {"ev":"committed","partition":0,"offset":6} a commit the broker acknowledged (next offset to read)
//   {"ev":"nocommit"}                           acknowledges the `nocommit` command
//   {"ev":"error","error":"..."}                anything unexpected (commit failures included)
//   {"ev":"request","api":"JoinGroup","version":5}  a request version sent (where the client tells)
// and read commands on stdin, one per line: `nocommit` (keep consuming, stop committing: the
// state of a consumer that crashes between processing and committing) and `stop` (close the
// consumer cleanly and exit 0).
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { type OffsetFetchResponse } from '../../src/protocol/messages/offset-fetch-response.ts'
import { type Acked } from './compat.ts'
import { RawClient, parseResponse, requestFrame } from './raw-client.ts'

/** Broker settings for the group tests: no initial rebalance delay, short sessions allowed. */
export const GROUP_BROKER_CONFIG: Readonly<Record<string, string>> = {
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
}

/** Session timeout the members ask for: how long the survivor waits for a killed member. */
export const SESSION_TIMEOUT_MS = 4000
export const HEARTBEAT_INTERVAL_MS = 300

export interface GroupRecord extends Acked {
  /** How many assignments the member had received when it read this record. */
  epoch: number
}

export type MemberEvent =
  | { ev: 'assigned'; partitions: number[] }
  | { ev: 'revoked'; partitions: number[] }
  | { ev: 'record'; partition: number; offset: number; key: string | null; value: string }
  | { ev: 'committed'; partition: number; offset: number }
  | { ev: 'nocommit' }
  | { ev: 'error'; error: string }
  | { ev: 'log'; text: string }
  /** A request type and version the client sent (where the client can tell). */
  | { ev: 'request'; api: string; version: number }

/** Turns one output line into an event; undefined for lines that carry none. */
export type LineParser = (stream: 'stdout' | 'stderr', line: string) => MemberEvent | undefined

/** The JSON-lines protocol above, on stdout; stderr is kept for diagnostics only. */
export const jsonLines: LineParser = (stream, line) => {
  if (stream !== 'stdout' || !line.startsWith('{')) return undefined
  return JSON.parse(line) as MemberEvent
}

/** A consumer-group member running as a child process. */
export class GroupMember {
  readonly name: string
  readonly records: GroupRecord[] = []
  /** Every assignment received, in order; the last one is current. */
  readonly assignments: number[][] = []
  /** partition → the last committed offset the broker acknowledged to this member. */
  readonly committed = new Map<number, number>()
  readonly errors: string[] = []
  /** The texts of the member's `log` events (diagnostics). */
  readonly logs: string[] = []
  /** Request versions the client reported sending: api name → versions. */
  readonly requests = new Map<string, Set<number>>()
  readonly proc: ChildProcess
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  private exit: { code: number | null; signal: NodeJS.Signals | null } | null = null
  private output = ''
  private commitsPaused = false

  constructor(name: string, cmd: string, args: readonly string[], parse: LineParser = jsonLines) {
    this.name = name
    this.proc = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    for (const stream of ['stdout', 'stderr'] as const) {
      let partial = ''
      this.proc[stream]!.on('data', (d: Buffer) => {
        const text = d.toString()
        this.output += stream === 'stderr' ? text.replace(/^/gm, '! ') : text
        if (this.output.length > 2_000_000) this.output = this.output.slice(-1_000_000)
        partial += text
        const lines = partial.split('\n')
        partial = lines.pop()!
        for (const line of lines) {
          let ev: MemberEvent | undefined
          try {
            ev = parse(stream, line)
          } catch (err) {
            this.errors.push(`unparsable line ${JSON.stringify(line)}: ${String(err)}`)
          }
          if (ev !== undefined) this.apply(ev)
        }
      })
    }
    this.proc.stdin!.on('error', () => undefined)
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        this.exit = { code, signal }
        resolve(this.exit)
      })
      this.proc.once('error', (err) => {
        // Could not be started (e.g. the command is missing).
        this.output += `! ${String(err)}\n`
        this.exit = { code: null, signal: null }
        resolve(this.exit)
      })
    })
  }

  private apply(ev: MemberEvent): void {
    switch (ev.ev) {
      case 'assigned':
        this.assignments.push([...ev.partitions].sort((a, b) => a - b))
        break
      case 'revoked':
        break
      case 'record':
        this.records.push({
          partition: ev.partition,
          offset: ev.offset,
          key: ev.key,
          value: ev.value,
          epoch: this.assignments.length,
        })
        break
      case 'committed':
        this.committed.set(ev.partition, Math.max(this.committed.get(ev.partition) ?? -1, ev.offset))
        break
      case 'nocommit':
        this.commitsPaused = true
        break
      case 'error':
        this.errors.push(ev.error)
        break
      case 'log':
        this.logs.push(ev.text)
        break
      case 'request':
        this.requests.set(ev.api, (this.requests.get(ev.api) ?? new Set()).add(ev.version))
        break
    }
  }

  /** The current assignment (empty before the first). */
  get assignment(): number[] {
    return this.assignments.at(-1) ?? []
  }

  get alive(): boolean {
    return this.exit === null
  }

  /** Everything the process printed (stderr lines prefixed with "! "), for failure messages. */
  get log(): string {
    return this.output
  }

  /** Polls `check` until it returns something other than undefined; fails early if the process exits. */
  async waitFor<T>(what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const v = await check()
      if (v !== undefined) return v
      if (this.exit !== null)
        throw new Error(
          `${this.name} exited (${this.exit.code ?? this.exit.signal}) while waiting for ${what}\n${this.tail()}`,
        )
      if (Date.now() > deadline) throw new Error(`${this.name}: timed out waiting for ${what}\n${this.tail()}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  private tail(): string {
    return this.output.split('\n').slice(-60).join('\n')
  }

  send(command: string): void {
    this.proc.stdin!.write(`${command}\n`)
  }

  /** Stop committing (the member keeps consuming); resolves once the member has acknowledged. */
  async pauseCommits(): Promise<void> {
    this.send('nocommit')
    await this.waitFor('nocommit acknowledged', () => (this.commitsPaused ? true : undefined))
  }

  /** SIGKILL: no leave, no commit. */
  async kill(): Promise<void> {
    if (this.exit === null) this.proc.kill('SIGKILL')
    await this.exited
  }

  /** Clean shutdown through the `stop` command (or `signal`, for kcat); resolves to the exit code. */
  async stop(signal?: NodeJS.Signals, timeoutMs = 20_000): Promise<number | null> {
    if (this.exit === null) {
      if (signal === undefined) this.send('stop')
      else this.proc.kill(signal)
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs)
    const { code, signal: sig } = await this.exited
    clearTimeout(timer)
    if (sig === 'SIGKILL') throw new Error(`${this.name} did not stop within ${timeoutMs} ms\n${this.tail()}`)
    return code
  }
}

// --- Reading the broker directly --------------------------------------------------------

/** The group's committed offsets for a topic (raw OffsetFetch v1), by partition; -1 where none. */
export async function committedOffsets(
  port: number,
  group: string,
  topic: string,
  partitions: number,
): Promise<number[]> {
  const c = await RawClient.connect(port)
  try {
    const partitionIndexes = Array.from({ length: partitions }, (_, i) => i)
    c.write(
      requestFrame(9, 1, 1, {
        groupId: group,
        topics: [{ name: topic, partitionIndexes }],
        groups: [],
        requireStable: false,
      }),
    )
    const { body } = parseResponse<OffsetFetchResponse>(9, 1, await c.nextFrame())
    const t = body.topics.find((x) => x.name === topic)
    assert.ok(t, `OffsetFetch answered for ${topic}`)
    const out = partitionIndexes.map(() => -1)
    for (const p of t.partitions) {
      assert.equal(p.errorCode, 0, `OffsetFetch ${group} ${topic}-${p.partitionIndex}`)
      out[p.partitionIndex] = p.committedOffset
    }
    return out
  } finally {
    c.close()
  }
}

// --- Checks ----------------------------------------------------------------------------

/** One past the last acknowledged offset of each partition. */
export function endOffsets(acked: readonly Acked[], partitions: number): number[] {
  const end = Array.from({ length: partitions }, () => 0)
  for (const m of acked) end[m.partition] = Math.max(end[m.partition], m.offset + 1)
  return end
}

/** Assignments that share no partition and together cover 0..partitions-1, none empty. */
export function assertDisjointCover(assignments: readonly (readonly number[])[], partitions: number): void {
  for (const a of assignments) assert.ok(a.length > 0, `every member has partitions: ${JSON.stringify(assignments)}`)
  const all = assignments.flat().sort((a, b) => a - b)
  assert.deepEqual(
    all,
    Array.from({ length: partitions }, (_, i) => i),
    `assignments disjoint and covering: ${JSON.stringify(assignments)}`,
  )
}

/** The acknowledged offsets of every partition are 0, 1, 2… in the order they were sent. */
export function assertDenseAcks(acked: readonly Acked[], partitions: number): void {
  for (let p = 0; p < partitions; p++) {
    const offsets = acked.filter((m) => m.partition === p).map((m) => m.offset)
    assert.deepEqual(
      offsets,
      offsets.map((_, i) => i),
      `partition ${p}: acknowledged offsets are dense from 0 in send order`,
    )
  }
}

export interface DeliveryReport {
  /** (partition, offset) read more than once, with who read it. */
  duplicates: { partition: number; offset: number; readers: string[] }[]
}

/**
 * At-least-once delivery across a group's members:
 * - every acknowledged record was read by some member, with its key and value, and nothing else was;
 * - each member read each partition in offset order (within one assignment, each read is the next offset);
 * - a record read twice was first read by `killed` at or past its last acknowledged commit of that
 *   partition, and read again by a survivor (once).
 */
export function assertDelivery(
  acked: readonly Acked[],
  members: readonly GroupMember[],
  killed: GroupMember | null,
): DeliveryReport {
  const byKey = new Map(acked.map((m) => [`${m.partition}/${m.offset}`, m]))
  const readers = new Map<string, string[]>()
  for (const member of members) {
    for (const r of member.records) {
      const k = `${r.partition}/${r.offset}`
      const sent = byKey.get(k)
      assert.ok(sent, `${member.name} read ${k}, which was never acknowledged`)
      assert.deepEqual([r.key, r.value], [sent.key, sent.value], `${member.name}: key and value at ${k}`)
      readers.set(k, [...(readers.get(k) ?? []), member.name])
    }
    // In order: per partition, offsets increase; within one assignment epoch they are consecutive.
    const last = new Map<number, GroupRecord>()
    for (const r of member.records) {
      const prev = last.get(r.partition)
      if (prev !== undefined) {
        assert.ok(
          r.offset > prev.offset,
          `${member.name} read ${r.partition}/${r.offset} after ${r.partition}/${prev.offset}`,
        )
        if (prev.epoch === r.epoch)
          assert.equal(
            r.offset,
            prev.offset + 1,
            `${member.name}: no gap in partition ${r.partition} within one assignment`,
          )
      }
      last.set(r.partition, r)
    }
  }
  const missing = acked
    .filter((m) => !readers.has(`${m.partition}/${m.offset}`))
    .map((m) => `${m.partition}/${m.offset}`)
  assert.deepEqual(missing, [], 'every acknowledged record was consumed')
  const duplicates: DeliveryReport['duplicates'] = []
  for (const [k, names] of readers) {
    if (names.length === 1) continue
    const [partition, offset] = k.split('/').map(Number)
    duplicates.push({ partition, offset, readers: names })
    assert.ok(killed !== null, `${k} read by ${names.join(', ')} with no member killed`)
    assert.equal(names.length, 2, `${k} read twice at most: ${names.join(', ')}`)
    assert.ok(
      names.includes(killed.name),
      `${k} read twice (${names.join(', ')}): only what the killed member read may be read again`,
    )
    const commit = killed.committed.get(partition) ?? 0
    assert.ok(
      offset >= commit,
      `${k} read again although ${killed.name} had committed ${commit} on partition ${partition}`,
    )
  }
  return { duplicates }
}

// --- The scenario every client goes through ---------------------------------------------

export interface GroupClient {
  /**
   * Produces `count` records with acks=all: record i to partition i % partitions, key `k<i>`,
   * value `<prefix>-<i>`. Resolves to what the producer acknowledged (partition and offset each).
   */
  produce(topic: string, partitions: number, count: number, prefix: string): Promise<Acked[]>
  /** Starts a member of `group` subscribed to `topic`, printing the JSON-lines events. */
  member(name: string, group: string, topic: string): GroupMember
}

/**
 * A topic, a group and the members that come and go in it, step by step:
 * one member consumes; a second joins (rebalance); the second is SIGKILLed with records read
 * but not committed (the survivor takes its partitions over at its last commit); then, with the
 * group empty, the broker is SIGKILLed and restarted and a new member resumes from the
 * committed offsets.
 */
export class GroupScenario {
  readonly acked: Acked[] = []
  readonly members: GroupMember[] = []
  readonly client: GroupClient
  readonly topic: string
  readonly group: string
  readonly partitions: number
  readonly port: () => number

  constructor(client: GroupClient, topic: string, group: string, partitions: number, port: () => number) {
    this.client = client
    this.topic = topic
    this.group = group
    this.partitions = partitions
    this.port = port
  }

  async produce(prefix: string, count: number): Promise<Acked[]> {
    const acked = await this.client.produce(this.topic, this.partitions, count, prefix)
    assert.equal(acked.length, count, `${prefix}: every record acknowledged`)
    this.acked.push(...acked)
    return acked
  }

  start(name: string): GroupMember {
    const m = this.client.member(name, this.group, this.topic)
    this.members.push(m)
    return m
  }

  get end(): number[] {
    return endOffsets(this.acked, this.partitions)
  }

  /** Waits until the members' current assignments are disjoint, non-empty and cover every partition. */
  async settled(members: readonly GroupMember[]): Promise<number[][]> {
    const all = Array.from({ length: this.partitions }, (_, i) => i).join(',')
    return members[0].waitFor(`assignments of ${members.map((m) => m.name).join(', ')} to settle`, () => {
      const current = members.map((m) => m.assignment)
      if (current.some((a) => a.length === 0)) return undefined
      return current
        .flat()
        .sort((a, b) => a - b)
        .join(',') === all
        ? current
        : undefined
    })
  }

  /** Waits until every partition's current owner has committed up to the end of what was acknowledged. */
  async caughtUp(members: readonly GroupMember[], partitions?: readonly number[]): Promise<void> {
    const end = this.end
    for (const p of partitions ?? end.map((_, i) => i)) {
      if (end[p] === 0) continue
      const owner = members.find((m) => m.assignment.includes(p))
      assert.ok(owner, `partition ${p} has an owner among ${members.map((m) => m.name).join(', ')}`)
      await owner.waitFor(`commit of ${this.topic}-${p} up to ${end[p]}`, () =>
        owner.committed.get(p) === end[p] ? true : undefined,
      )
    }
  }

  /** Waits until `member` has read every acknowledged record of `partitions` (commits or not). */
  async readToEnd(member: GroupMember, partitions: readonly number[]): Promise<void> {
    const end = this.end
    for (const p of partitions) {
      if (end[p] === 0) continue
      await member.waitFor(`read of ${this.topic}-${p} up to ${end[p]}`, () =>
        member.records.some((r) => r.partition === p && r.offset === end[p] - 1) ? true : undefined,
      )
    }
  }

  // The steps, in order. Each test file runs them as its tests and adds its client's admin checks.

  a!: GroupMember
  b!: GroupMember

  /** (a) Records produced with acks=all; (b) member A alone gets every partition and commits each record. */
  async firstMember(count = 60): Promise<void> {
    await this.produce('one', count)
    const a = (this.a = this.start('A'))
    const all = Array.from({ length: this.partitions }, (_, i) => i)
    assert.deepEqual(await a.waitFor('A assigned', () => (a.assignment.length > 0 ? a.assignment : undefined)), all)
    await this.caughtUp([a])
    assert.deepEqual(
      await committedOffsets(this.port(), this.group, this.topic, this.partitions),
      this.end,
      'OffsetFetch agrees with the acknowledged commits',
    )
  }

  /** (b) Member B joins: a rebalance splits the partitions; both consume and commit their own. */
  async secondMemberJoins(count = 80): Promise<number[][]> {
    const { a } = this
    const b = (this.b = this.start('B'))
    const assignments = await this.settled([a, b])
    assertDisjointCover(assignments, this.partitions)
    await this.produce('two', count)
    await this.caughtUp([a, b])
    for (const m of [a, b]) {
      const epoch = m.assignments.length
      const foreign = m.records.filter((r) => r.epoch === epoch && !m.assignment.includes(r.partition))
      assert.deepEqual(foreign, [], `${m.name} read only its own partitions after the rebalance`)
    }
    return assignments
  }

  /**
   * (b) B stops committing, reads its share of new records, and is SIGKILLed. After B's session
   * timeout A gets every partition and resumes each of B's exactly at B's last acknowledged commit.
   */
  async memberKilled(count = 80): Promise<void> {
    const { a, b } = this
    await b.pauseCommits()
    await this.produce('three', count)
    await this.readToEnd(b, b.assignment)
    await this.caughtUp([a], a.assignment)
    const bCommits = new Map(b.committed)
    await b.kill()
    await a.waitFor(
      'A assigned every partition',
      () => (a.assignment.length === this.partitions ? true : undefined),
      SESSION_TIMEOUT_MS + 30_000,
    )
    await this.caughtUp([a])
    const resumed = this.resumedAt(a)
    for (const p of b.assignment)
      assert.equal(resumed.get(p), bCommits.get(p), `A resumed partition ${p} at B's last commit`)
    await this.produce('four', count / 2)
    await this.caughtUp([a])
  }

  /** (c) Every acknowledged record read, in order per partition; exactly B's uncommitted reads twice. */
  checkDelivery(): void {
    const { a, b } = this
    assertDenseAcks(this.acked, this.partitions)
    const { duplicates } = assertDelivery(this.acked, [a, b], b)
    const expected = this.acked
      .filter((m) => m.value.startsWith('three-') && b.assignment.includes(m.partition))
      .map((m) => `${m.partition}/${m.offset}`)
    assert.deepEqual(
      duplicates.map((d) => `${d.partition}/${d.offset}`).sort(),
      expected.sort(),
      'read twice: exactly what B read after its last commit',
    )
    assert.deepEqual([...a.errors, ...b.errors], [], 'no member reported an error')
  }

  /**
   * (d) A leaves cleanly; more records are produced; the broker is SIGKILLed and restarted on its
   * data directory (`restart`); the committed offsets are still there; member C of the same group
   * reads exactly the records after them (produced before the crash, and after the restart).
   */
  async brokerRestart(restart: () => Promise<void>, count = 40): Promise<GroupMember> {
    assert.equal(await this.a.stop(), 0, 'A closed cleanly')
    const committed = await committedOffsets(this.port(), this.group, this.topic, this.partitions)
    assert.deepEqual(committed, this.end)
    await this.produce('five', count)
    await restart()
    assert.deepEqual(
      await committedOffsets(this.port(), this.group, this.topic, this.partitions),
      committed,
      'committed offsets after the restart',
    )
    await this.produce('six', count)
    const c = this.start('C')
    await c.waitFor('C assigned every partition', () => (c.assignment.length === this.partitions ? true : undefined))
    await this.caughtUp([c])
    const after = this.acked.filter((m) => m.offset >= committed[m.partition])
    assert.deepEqual([...new Set(after.map((m) => m.value.split('-')[0]))], ['five', 'six'])
    assertDelivery(after, [c], null)
    assert.equal(c.records.length, after.length, 'C read only what came after the committed offsets')
    assert.deepEqual(
      [...this.resumedAt(c)].sort((x, y) => x[0] - y[0]),
      committed.map((o, p) => [p, o]),
      'C started at the committed offsets',
    )
    assert.deepEqual(c.errors, [])
    this.resumeFrom = committed
    return c
  }

  /** The committed offsets brokerRestart() found, from which member C started. */
  resumeFrom: number[] = []

  /**
   * (d) The broker is SIGKILLed and restarted again while member C is up: C reconnects to the
   * restored group, and reads and commits what is produced next; nothing is read twice or skipped.
   */
  async brokerRestartUnderMember(c: GroupMember, restart: () => Promise<void>, count = 40): Promise<void> {
    await restart()
    await this.produce('seven', count)
    await c.waitFor('C assigned every partition', () => (c.assignment.length === this.partitions ? true : undefined))
    await this.caughtUp([c])
    assertDelivery(
      this.acked.filter((m) => m.offset >= this.resumeFrom[m.partition]),
      [c],
      null,
    )
    assert.deepEqual(await committedOffsets(this.port(), this.group, this.topic, this.partitions), this.end)
    assert.deepEqual(c.errors, [])
  }

  /** The request versions every member reported, e.g. "JoinGroup v5", for diagnostics. */
  requestVersions(): string {
    const all = new Map<string, Set<number>>()
    for (const m of this.members)
      for (const [api, v] of m.requests) all.set(api, new Set([...(all.get(api) ?? []), ...v]))
    return [...all].map(([api, v]) => `${api} v${[...v].sort((x, y) => x - y).join(',')}`).join(', ')
  }

  /** The first offset `member` read of each partition in its current assignment. */
  resumedAt(member: GroupMember): Map<number, number> {
    const epoch = member.assignments.length
    const first = new Map<number, number>()
    for (const r of member.records) if (r.epoch === epoch && !first.has(r.partition)) first.set(r.partition, r.offset)
    return first
  }
}
