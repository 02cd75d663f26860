// Publishes a database's committed changes to its Kafka change topic `cortado-cdc-<db>`, in
// Debezium's envelope (debezium.ts), exactly once with respect to the commit order:
// - partition p of the change topic holds the changes of database partition p, in commit order
//   (so every document's changes are in order under its key);
// - each record says which operation of which transaction it is (header `cortado.source`);
// - at start, and after any failure, the publisher reads the last record of each change-topic
//   partition and resumes its source partition right after it: a record the crash left
//   unacknowledged but written is found there and not written again, one never written is.
// Records go through the reliable producer (idempotent, in order, nothing after a failure). One
// publisher per database at a time: two would each write everything.
import { type Registry, Counter, Gauge } from 'prom-client'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { LogReader, type LogRecord } from '../../client/log-reader.ts'
import { ReliableProducer } from '../../client/reliable-producer.ts'
import { type Logger } from '../../util/log.ts'
import { ensureTopic } from '../kafka-topics.ts'
import { type DatabaseInfo } from '../metadata/model.ts'
import { type ChangePosition, type CommittedTransaction } from './change-decoder.ts'
import { ChangeFeed } from './change-feed.ts'
import {
  alreadyPublished,
  cdcTopicOf,
  debeziumRecords,
  parseSourceMark,
  resumePoint,
  SOURCE_HEADER,
  type SourceMark,
} from './debezium.ts'

export interface CdcPublisherOptions {
  bootstrap: string[]
  security?: KafkaSecurity
  db: DatabaseInfo
  /** Replication factor of the change topic (1 on the embedded broker). */
  replicationFactor: number
  log: Logger
  metrics: CdcMetrics
  /** Written into each event's source.version. */
  version: string
}

export interface CdcMetrics {
  published: Counter
  lag: Gauge
}

export function createCdcMetrics(registry: Registry): CdcMetrics {
  return {
    published: new Counter({
      name: 'cortado_cdc_published_records_total',
      help: 'Records written to change topics, by database',
      labelNames: ['db'],
      registers: [registry],
    }),
    lag: new Gauge({
      name: 'cortado_cdc_lag_records',
      help: "Records of a database partition's replication log not yet read into its change topic",
      labelNames: ['db', 'partition'],
      registers: [registry],
    }),
  }
}

const RESTART_DELAY_MS = 1000
const LAG_INTERVAL_MS = 2000
const LAST_RECORD_TIMEOUT_MS = 30_000

export class CdcPublisher {
  readonly #o: CdcPublisherOptions
  readonly topic: string
  #stopped = false
  #run: { feed: ChangeFeed; producer: ReliableProducer; reader: LogReader } | undefined
  #restart: NodeJS.Timeout | undefined
  #lagTimer: NodeJS.Timeout | undefined
  #starting: Promise<void> | undefined

  constructor(options: CdcPublisherOptions) {
    this.#o = options
    this.topic = cdcTopicOf(options.db.name)
  }

  /** Creates the change topic if needed and starts publishing; any failure (logged) starts it again. */
  start(): Promise<void> {
    this.#starting = this.#start().catch((e: unknown) => this.#fail(e as Error))
    this.#lagTimer = setInterval(() => void this.#measureLag(), LAG_INTERVAL_MS)
    return this.#starting
  }

  async #start(): Promise<void> {
    const { db } = this.#o
    await ensureTopic(
      this.#o.bootstrap,
      {
        name: this.topic,
        partitions: db.partitions,
        replicationFactor: this.#o.replicationFactor,
        configs: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' },
      },
      this.#o.security,
    )
    const reader = new LogReader({ bootstrap: this.#o.bootstrap, security: this.#o.security, clientId: 'cortado-cdc' })
    const from = new Map<number, ChangePosition>()
    const skips = new Map<number, SourceMark>()
    try {
      for (let p = 0; p < db.partitions; p++) {
        const point = resumePoint(await lastMark(reader, this.topic, p))
        from.set(p, point.from)
        if (point.skip !== undefined) skips.set(p, point.skip)
      }
    } catch (error) {
      await reader.close()
      throw error
    }
    if (this.#stopped) return void (await reader.close())
    const producer = new ReliableProducer({
      bootstrap: this.#o.bootstrap,
      security: this.#o.security,
      clientId: `cortado-cdc-${db.name}`,
      onFailure: (f) => this.#fail(new Error(`change topic write failed: ${f.error.message}`)),
    })
    // Where each source partition stands before its next transaction (its `from`).
    const before = new Map(from)
    const publish = async (transactions: CommittedTransaction[]) => {
      const sends: Promise<unknown>[] = []
      for (const tx of transactions) {
        const records = debeziumRecords(db, tx, before.get(tx.partition)!, this.#o.version, Date.now())
        before.set(tx.partition, tx.after)
        for (const r of records) {
          if (alreadyPublished(r.mark, skips.get(r.partition))) continue
          sends.push(
            producer.send({
              topic: this.topic,
              partition: r.partition,
              key: r.key,
              value: r.value,
              headers: [[SOURCE_HEADER, Buffer.from(JSON.stringify(r.mark))]],
            }),
          )
        }
      }
      // The feed reads on once these are acknowledged: memory stays bounded.
      await Promise.all(sends)
      this.#o.metrics.published.labels(db.name).inc(sends.length)
    }
    const feed = new ChangeFeed({
      bootstrap: this.#o.bootstrap,
      security: this.#o.security,
      db,
      from,
      onTransactions: (transactions) => publish(transactions),
      onError: (e) => this.#fail(e),
    })
    this.#run = { feed, producer, reader }
    this.#o.log.info('change topic publisher started', {
      db: db.name,
      topic: this.topic,
      from: Object.fromEntries([...from].map(([p, f]) => [p, `${f.offset}@${f.generation}:${f.scn}`])),
    })
  }

  /** Any failure: stop this run and start again from the change topic's end, after a pause. */
  #fail(error: Error): void {
    if (this.#stopped || this.#restart !== undefined) return
    this.#o.log.warn('change topic publisher failed; resuming from the topic in 1 s', {
      db: this.#o.db.name,
      error: error.message,
    })
    const run = this.#run
    this.#run = undefined
    this.#restart = setTimeout(() => {
      void (async () => {
        await closeRun(run)
        this.#restart = undefined
        if (this.#stopped) return
        this.#starting = this.#start().catch((e: unknown) => this.#fail(e as Error))
      })()
    }, RESTART_DELAY_MS)
  }

  async #measureLag(): Promise<void> {
    const run = this.#run
    if (run === undefined) return
    try {
      for (let p = 0; p < this.#o.db.partitions; p++) {
        const end = await run.reader.endOffset(this.#o.db.topic, p)
        this.#o.metrics.lag.labels(this.#o.db.name, String(p)).set(Math.max(0, end - run.feed.readOffset(p)))
      }
    } catch {
      // Measured again at the next interval.
    }
  }

  async close(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#lagTimer)
    clearTimeout(this.#restart)
    await this.#starting?.catch(() => undefined)
    await closeRun(this.#run)
    this.#run = undefined
  }
}

async function closeRun(run: { feed: ChangeFeed; producer: ReliableProducer; reader: LogReader } | undefined) {
  if (run === undefined) return
  await run.feed.close()
  // A failed run's unacknowledged records are given up at once: the next run finds what landed.
  await run.producer.close(1000)
  await run.reader.close()
}

/** The `cortado.source` of the last record of a change-topic partition (undefined: empty). */
async function lastMark(reader: LogReader, topic: string, partition: number): Promise<SourceMark | undefined> {
  const end = await reader.endOffset(topic, partition)
  if (end === 0) return undefined
  let timer: NodeJS.Timeout | undefined
  const record = await new Promise<LogRecord>((resolve, reject) => {
    timer = setTimeout(
      () => reject(new Error(`could not read the end of ${topic}/${partition}`)),
      LAST_RECORD_TIMEOUT_MS,
    )
    reader.assign(topic, partition, end - 1, (records) => {
      reader.unassign(topic, partition)
      resolve(records[records.length - 1])
    })
  }).finally(() => clearTimeout(timer))
  const header = record.headers.find(([k]) => k === SOURCE_HEADER)?.[1]
  const mark = parseSourceMark(header)
  if (mark === undefined)
    throw new Error(`${topic}/${partition} ends with a record without a valid ${SOURCE_HEADER} header`)
  return mark
}
