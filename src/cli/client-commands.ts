// `cortado produce`, `cortado consume` and `cortado audit`: the client layer (reliable producer,
// in-line large messages, auditing) for people and scripts, without writing code.
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { Consumer } from '@platformatic/kafka'
import { AuditCounter, auditBytes } from '../client/audit/counter.ts'
import { AuditPublisher } from '../client/audit/publisher.ts'
import { runAuditReport } from '../client/audit/report.ts'
import { LargeMessageConsumer } from '../client/large-message/consumer.ts'
import { LargeMessageProducer } from '../client/large-message/producer.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../client/kafka-security.ts'
import { ReliableProducer } from '../client/reliable-producer.ts'

export interface ProduceOptions {
  bootstrap: string
  /** TLS and SASL (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  topic: string
  key?: string
  file?: string
  segmentSize?: number
  /** Lines of stdin (when no file is given). */
  input?: NodeJS.ReadableStream
  out?: (line: string) => void
  /**
   * While messages await acknowledgement and none has come for this long, give up: they are
   * reported not acknowledged (Kafka's delivery.timeout.ms, for a command line). Default: never.
   */
  stallTimeoutMs?: number
  /** Progress lines while acknowledgements are late (stderr in the CLI). */
  say?: (line: string) => void
}

/** Most stdin lines awaiting acknowledgement at once; the producer's own buffer applies below it. */
const MAX_OUTSTANDING = 1000

/** How often a late acknowledgement is reported. */
const STALL_REPORT_MS = 3000

/** Returns the number of messages that were not acknowledged (the exit status is non-zero if any). */
export async function produce(o: ProduceOptions): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(line + '\n'))
  const producer = new ReliableProducer({
    bootstrap: [o.bootstrap],
    security: o.security,
    clientId: 'cortado-cli',
    autocreateTopics: true,
  })
  // Lines of stdin, when no file is given; giving up closes them, so no more input is awaited.
  const lines =
    o.file === undefined ? createInterface({ input: o.input ?? process.stdin, crlfDelay: Infinity }) : undefined
  const stall = watchAcknowledgements(o, () => {
    lines?.close()
    void producer.close(0)
  })
  const large = new LargeMessageProducer({
    send: async (r) => {
      const ack = await producer.send({ ...r, timestamp: r.timestamp === undefined ? undefined : Number(r.timestamp) })
      stall.progress()
      return ack
    },
    segmentSize: o.segmentSize,
  })
  const counter = new AuditCounter({ side: 'produce' })
  const audit = new AuditPublisher({
    bootstrap: [o.bootstrap],
    security: o.security,
    counter,
    intervalMs: 10_000,
    clientId: 'cortado-cli-audit',
  })
  let failed = 0
  const key = o.key === undefined ? null : Buffer.from(o.key)
  const sendOne = async (value: Buffer): Promise<void> => {
    const timestamp = Date.now()
    // Value bytes only: a split message's consumer sees the message id as its key.
    const bytes = auditBytes(null, value)
    counter.record(o.topic, timestamp, 'attempt', bytes)
    stall.sent()
    try {
      const ack = await large.send({ topic: o.topic, key, value, timestamp })
      stall.settled()
      counter.record(o.topic, timestamp, 'success', bytes)
      out(JSON.stringify({ partition: ack.partition, offset: String(ack.offset), segments: ack.segments }))
    } catch (err) {
      stall.settled()
      failed++
      counter.record(o.topic, timestamp, 'failure', bytes)
      process.stderr.write(`cortado: message not acknowledged: ${err instanceof Error ? err.message : String(err)}\n`)
    }
  }
  try {
    if (o.file !== undefined) {
      await sendOne(await readFile(o.file))
    } else if (lines !== undefined) {
      const pending = new Set<Promise<void>>()
      for await (const line of lines) {
        const p = sendOne(Buffer.from(line)).finally(() => pending.delete(p))
        pending.add(p)
        if (pending.size >= MAX_OUTSTANDING) await Promise.race(pending)
      }
      await Promise.all(pending)
    }
  } finally {
    stall.stop()
    await producer.close()
    await audit.close().catch((err: unknown) => {
      process.stderr.write(`cortado: audit counts not published: ${err instanceof Error ? err.message : String(err)}\n`)
    })
  }
  return failed
}

interface AcknowledgementWatch {
  /** A message is sent: it awaits acknowledgement. */
  sent(): void
  /** Kafka acknowledged a record (a message or one segment of a large one). */
  progress(): void
  /** A message is acknowledged or failed. */
  settled(): void
  stop(): void
}

/**
 * Reports, every few seconds, messages that wait for an acknowledgement while none comes, and
 * gives up (`giveUp`) once none has come for `stallTimeoutMs`.
 */
function watchAcknowledgements(o: ProduceOptions, giveUp: () => void): AcknowledgementWatch {
  const say = o.say ?? ((line: string) => process.stderr.write(line + '\n'))
  let outstanding = 0
  let lastProgress = Date.now()
  let gaveUp = false
  const timer = setInterval(() => {
    const silentMs = Date.now() - lastProgress
    if (outstanding === 0 || gaveUp || silentMs < STALL_REPORT_MS) return
    const limit = o.stallTimeoutMs ?? Infinity
    if (silentMs >= limit) {
      gaveUp = true
      say(`cortado: giving up: Kafka at ${o.bootstrap} acknowledged nothing for ${Math.round(silentMs / 1000)} s`)
      giveUp()
      return
    }
    const left = limit === Infinity ? '' : `; giving up in ${Math.ceil((limit - silentMs) / 1000)} s`
    say(
      `cortado: waiting for Kafka at ${o.bootstrap} to acknowledge ${outstanding} message${outstanding === 1 ? '' : 's'} (none for ${Math.round(silentMs / 1000)} s${left})`,
    )
  }, STALL_REPORT_MS / 3)
  timer.unref()
  return {
    sent: () => {
      if (outstanding++ === 0) lastProgress = Date.now()
    },
    progress: () => void (lastProgress = Date.now()),
    settled: () => void outstanding--,
    stop: () => clearInterval(timer),
  }
}

export interface ConsumeOptions {
  bootstrap: string
  /** TLS and SASL (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  topic: string
  group?: string
  fromBeginning: boolean
  count?: number
  output?: string
  out?: (line: string) => void
}

/** Prints whole (reassembled) messages, one per line, or writes each to a file in `output`. */
export async function consume(o: ConsumeOptions): Promise<number> {
  const out = o.out ?? ((line: string) => process.stdout.write(line + '\n'))
  // Without a group, a fresh one, as Kafka's console consumer does.
  const group = o.group ?? `cortado-cli-${randomUUID()}`
  if (o.output !== undefined) await mkdir(o.output, { recursive: true })
  const consumer = new Consumer({
    clientId: 'cortado-cli',
    groupId: group,
    bootstrapBrokers: [o.bootstrap],
    ...kafkaConnectionOptions(o.security),
    autocommit: false,
    maxWaitTime: 500,
  })
  const reader = new LargeMessageConsumer({
    consumer,
    security: o.security,
    topics: [o.topic],
    startAt: o.fromBeginning || o.group !== undefined ? 'earliest' : 'latest',
  })
  const counter = new AuditCounter({ side: 'consume', group })
  const audit = new AuditPublisher({
    bootstrap: [o.bootstrap],
    security: o.security,
    counter,
    intervalMs: 10_000,
    clientId: 'cortado-cli-audit',
  })
  let seen = 0
  const stop = () => void reader.close()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  try {
    await reader.run(async (m) => {
      if (o.count !== undefined && seen >= o.count) return
      seen++
      counter.record(m.topic, Number(m.timestamp), 'success', auditBytes(null, m.value), group)
      if (o.output !== undefined)
        await writeFile(join(o.output, `${m.topic}-${m.partition}-${m.offset}`), m.value ?? Buffer.alloc(0))
      else out((m.value ?? Buffer.alloc(0)).toString('utf8'))
      if (o.count !== undefined && seen >= o.count) setImmediate(stop)
    })
  } finally {
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    await audit.close()
  }
  return seen
}

export interface AuditOptions {
  bootstrap: string
  /** TLS and SASL (`--command-config`); default plaintext. */
  security?: KafkaSecurity
  topic: string
  group: string
  from: number
  to: number
}

/** Prints the audit report; true when every message produced in the window was consumed. */
export async function audit(o: AuditOptions): Promise<boolean> {
  const report = await runAuditReport({
    bootstrap: [o.bootstrap],
    security: o.security,
    topic: o.topic,
    group: o.group,
    from: o.from,
    to: o.to,
  })
  process.stdout.write(report.text + '\n')
  return report.complete
}
