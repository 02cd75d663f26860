// In-line large messages against the real broker (message.max.bytes = 1 MB), produced through a
// plain idempotent @platformatic/kafka Producer as the send function and consumed by
// LargeMessageConsumer members running as child processes (test/client/large-message/fixtures/
// lm-consumer.ts): a 20 MB message; segments of several producers interleaved in one partition;
// a member SIGKILLed in the middle of a message and restarted; a rebalance in the middle of a
// message. Every message is delivered whole, once, in order.
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { after, before, test } from 'node:test'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { LargeMessageProducer, type RecordAck } from '../../../src/client/large-message/producer.ts'
import { type OutgoingRecord } from '../../../src/client/large-message/segment.ts'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../../helpers/broker-process.ts'

const FIXTURE = join(ROOT, 'test', 'client', 'large-message', 'fixtures', 'lm-consumer.ts')
const BROKER_CONFIG = {
  'message.max.bytes': '1048576',
  'group.initial.rebalance.delay.ms': '0',
  'group.min.session.timeout.ms': '1000',
}

let broker: BrokerProcess
let admin: Admin
const producers: Producer[] = []
const members: Member[] = []

before(async () => {
  broker = await startBroker({ config: BROKER_CONFIG })
  admin = new Admin({ clientId: 'lm-admin', bootstrapBrokers: [broker.bootstrap], retries: 20, retryDelay: 200 })
})

after(async () => {
  for (const m of members) m.kill()
  for (const p of producers) await p.close()
  await admin.close()
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

function newSend(): (r: OutgoingRecord) => Promise<RecordAck> {
  const producer = new Producer({
    clientId: `lm-producer-${producers.length}`,
    bootstrapBrokers: [broker.bootstrap],
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 20,
    retryDelay: 200,
  })
  producers.push(producer)
  return async (r) => {
    const result = await producer.send({
      messages: [
        {
          topic: r.topic,
          partition: r.partition,
          key: r.key ?? undefined,
          value: r.value ?? undefined,
          headers: new Map((r.headers ?? []).map(([k, v]) => [Buffer.from(k), v])),
        },
      ],
      acks: ProduceAcks.ALL,
    })
    const o = result.offsets![0]
    return { topic: o.topic, partition: o.partition, offset: o.offset }
  }
}

async function createTopic(partitions: number): Promise<string> {
  const topic = `lm-${Date.now()}-${Math.floor(Math.random() * 1e6)}`
  await admin.createTopics({ topics: [topic], partitions, replicas: 1 })
  return topic
}

type Event = {
  ev: string
  partition?: number
  offset?: number
  startOffset?: number
  result?: string
  seq?: number | null
  key?: string | null
  length?: number
  sha256?: string
  partitions?: number[]
  error?: string
  hw?: number
  headers?: [string, string][]
}

class Member {
  readonly events: Event[] = []
  readonly proc: ChildProcess
  stderr = ''
  readonly #exited: Promise<void>
  constructor(group: string, topic: string) {
    this.proc = spawn(process.execPath, [FIXTURE, broker.bootstrap, group, topic], { stdio: ['pipe', 'pipe', 'pipe'] })
    createInterface({ input: this.proc.stdout! }).on('line', (l) => {
      if (l.startsWith('{')) this.events.push(JSON.parse(l) as Event)
    })
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.#exited = new Promise((resolve) => this.proc.once('exit', () => resolve()))
    members.push(this)
  }
  messages(): Event[] {
    return this.events.filter((e) => e.ev === 'message')
  }
  async waitFor(what: string, pred: (events: Event[]) => boolean, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (!pred(this.events)) {
      const err = this.events.find((e) => e.ev === 'error')
      if (err !== undefined) throw new Error(`member error: ${err.error}`)
      if (Date.now() > deadline)
        throw new Error(
          `timed out waiting for ${what}; events: ${JSON.stringify(this.events.slice(-20))}\n${this.stderr.slice(-2000)}`,
        )
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  async sigkill(): Promise<void> {
    this.proc.kill('SIGKILL')
    await this.#exited
  }
  async stop(): Promise<void> {
    this.proc.stdin!.write('stop\n')
    await this.#exited
  }
  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL')
  }
}

/** An error with its causes and aggregated errors, as text. */
function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e)
  const inner = [...((e as { errors?: unknown[] }).errors ?? []), ...(e.cause === undefined ? [] : [e.cause])]
  return [`${e.name}: ${e.message}`, ...inner.map(errorText)].join(' / ')
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

function pattern(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size)
  for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, Math.min(i, size - 4))
  return b
}

void test('a 20 MB message through a broker whose message.max.bytes is 1 MB', async () => {
  const topic = await createTopic(1)
  const send = newSend()
  const tooLarge = await send({ topic, key: null, value: Buffer.alloc(2_000_000) }).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.match(errorText(tooLarge), /larger than the max message size/i, 'the broker limit is real')
  const lmp = new LargeMessageProducer({ send, segmentSize: 800_000 })
  const value = pattern(20 * 1024 * 1024, 7)
  const ack = await lmp.send({
    topic,
    key: null,
    value,
    headers: [['content-type', Buffer.from('application/octet-stream')]],
  })
  assert.equal(ack.segments, 27)
  const small = await lmp.send({ topic, key: Buffer.from('k'), value: Buffer.from('after') })
  const m = new Member('lm-big', topic)
  await m.waitFor('two messages', (e) => e.filter((x) => x.ev === 'message').length >= 2, 60_000)
  const [big, second] = m.messages()
  assert.deepEqual(
    [big.offset, big.startOffset, big.length, big.sha256, big.key],
    [Number(ack.offset), 0, value.length, sha(value), ack.messageId!.toString('hex')],
  )
  assert.deepEqual(big.headers, [['content-type', 'application/octet-stream']])
  assert.deepEqual(
    [second.offset, second.key, second.length],
    [Number(small.offset), Buffer.from('k').toString('hex'), 5],
  )
  await m.stop()
})

void test('segments of several producers interleaved in one partition: each message whole, once, in order', async () => {
  const topic = await createTopic(1)
  const sent: { offset: number; sha256: string; length: number }[] = []
  await Promise.all(
    [0, 1, 2].map(async (p) => {
      const lmp = new LargeMessageProducer({ send: newSend(), segmentSize: 1000, maxInFlight: 1 })
      for (let i = 0; i < 6; i++) {
        const value = pattern(1500 + 997 * ((p * 6 + i) % 7), p * 100 + i)
        const ack = await lmp.send({ topic, partition: 0, key: null, value })
        sent.push({ offset: Number(ack.offset), sha256: sha(value), length: value.length })
      }
    }),
  )
  sent.sort((a, b) => a.offset - b.offset)
  const m = new Member('lm-mix', topic)
  await m.waitFor('all messages', (e) => e.filter((x) => x.ev === 'message').length >= sent.length)
  await m.waitFor('last commit', (e) => e.some((x) => x.ev === 'committed' && x.offset === sent.at(-1)!.offset + 1))
  const got = m.messages().map((e) => ({ offset: e.offset!, sha256: e.sha256!, length: e.length! }))
  assert.deepEqual(got, sent)
  // The producers' segments did interleave: some message spans another's segments.
  const spans = m.messages().map((e) => [e.startOffset!, e.offset!])
  assert.ok(
    spans.some(([s, o], i) => spans.some(([s2], j) => j !== i && s2 > s && s2 < o)),
    'interleaved',
  )
  await m.stop()
})

void test('a member SIGKILLed in the middle of a message and restarted: nothing redelivered, nothing lost', async () => {
  const topic = await createTopic(1)
  const send = newSend()
  const lmp = new LargeMessageProducer({ send, segmentSize: 100 })
  const valA = pattern(350, 1)
  const valB = pattern(420, 2)
  const a = await lmp.send({ topic, key: null, value: valA }) // offsets 0-3
  const segB = lmp.split({ topic, key: null, value: valB })
  assert.equal(segB.length, 5)
  const b0 = await send(segB[0]) // 4
  const c = await send({ topic, key: Buffer.from('c'), value: Buffer.from('plain C') }) // 5
  await send(segB[1]) // 6
  const m1 = new Member('lm-kill', topic)
  await m1.waitFor(
    'C delivered and committed, B half read',
    (e) =>
      e.some((x) => x.ev === 'committed' && x.hw === Number(c.offset) + 1) &&
      e.some((x) => x.ev === 'record' && x.offset === 6 && x.result === 'incomplete'),
  )
  const committed = m1.events.filter((x) => x.ev === 'committed').at(-1)!
  assert.equal(committed.offset, Number(b0.offset), 'the commit stops at the start of the incomplete message B')
  await m1.sigkill()
  let last: RecordAck | undefined
  for (const s of segB.slice(2)) last = await send(s)
  const d = await lmp.send({ topic, key: null, value: pattern(250, 4) })
  const m2 = new Member('lm-kill', topic)
  await m2.waitFor('B and D', (e) => e.filter((x) => x.ev === 'message').length >= 2)
  await m2.waitFor('final commit', (e) => e.some((x) => x.ev === 'committed' && x.offset === Number(d.offset) + 1))
  const delivered = [...m1.messages(), ...m2.messages()].map((e) => [e.offset, e.sha256])
  assert.deepEqual(delivered, [
    [Number(a.offset), sha(valA)],
    [Number(c.offset), sha(Buffer.from('plain C'))],
    [Number(last!.offset), sha(valB)],
    [Number(d.offset), sha(pattern(250, 4))],
  ])
  assert.ok(
    m2.events.some((x) => x.ev === 'record' && x.offset === Number(c.offset) && x.result === 'delivered'),
    'C was re-read and skipped',
  )
  await m2.stop()
})

void test('a rebalance in the middle of a message: every message delivered whole, once, in order', async () => {
  const topic = await createTopic(2)
  const send = newSend()
  const lmp = new LargeMessageProducer({ send, segmentSize: 100 })
  const vals = [pattern(300, 10), pattern(300, 11)]
  const segs = [0, 1].map((p) => lmp.split({ topic, partition: p, key: null, value: vals[p] }))
  const expected: [number, number, string][] = []
  for (const p of [0, 1]) {
    await send(segs[p][0])
    const y = await send({ topic, partition: p, key: Buffer.from('y'), value: Buffer.from(`Y${p}`) })
    expected.push([p, Number(y.offset), sha(Buffer.from(`Y${p}`))])
  }
  const m1 = new Member('lm-reb', topic)
  await m1.waitFor('Y0, Y1 committed', (e) =>
    [0, 1].every((p) => e.some((x) => x.ev === 'committed' && x.partition === p && x.hw === 2)),
  )
  const m2 = new Member('lm-reb', topic)
  await m2.waitFor('m2 assigned', (e) => e.some((x) => x.ev === 'assigned' && x.partitions!.length > 0))
  await m1.waitFor('m1 reassigned', (e) => e.filter((x) => x.ev === 'assigned').at(-1)!.partitions!.length === 1)
  for (const p of [0, 1]) {
    let last: RecordAck | undefined
    for (const s of segs[p].slice(1)) last = await send(s)
    expected.push([p, Number(last!.offset), sha(vals[p])])
    const z = await send({ topic, partition: p, key: Buffer.from('z'), value: Buffer.from(`Z${p}`) })
    expected.push([p, Number(z.offset), sha(Buffer.from(`Z${p}`))])
  }
  const all = () => [...m1.messages(), ...m2.messages()]
  const deadline = Date.now() + 30_000
  while (all().length < expected.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  await new Promise((r) => setTimeout(r, 500)) // anything extra would be a redelivery
  const byPartition = (list: [number, number, string][]) => [0, 1].map((p) => list.filter(([q]) => q === p))
  const got = all().map((e): [number, number, string] => [e.partition!, e.offset!, e.sha256!])
  assert.deepEqual(byPartition(got), byPartition(expected))
  // The partition that moved was re-read by its new owner from the safe offset (the start of the
  // incomplete message), and the message delivered before the rebalance was skipped there.
  assert.ok(
    m2.events.some((x) => x.ev === 'record' && x.result === 'delivered'),
    JSON.stringify(m2.events),
  )
  await m2.stop()
  await m1.stop()
})
