// Topics and their partition logs on disk.
//
// Layout: <data>/logs/<topic>-<topic id hex>/topic.json holds the topic's name, id, partition
// count and config overrides; <partition>/ beside it holds that partition's segments. Naming the
// directory by topic id means a topic deleted and recreated under the same name never shares
// files with its predecessor. Deleting a topic removes topic.json first (fsync'ed), so a crash
// halfway through a delete leaves an orphan directory that the next start removes.
import { randomUUID } from 'node:crypto'
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { ErrorCode } from '../protocol/errors.ts'
import { type BrokerConfig, ConfigError, topicConfigEntries, validateTopicConfigs } from './config.ts'
import { PartitionLog, type LogConfig } from './log/partition-log.ts'
import { type CleanerTarget, type CompactionConfig } from './log/cleaner.ts'
import { type Flusher } from './log/flusher.ts'
import { type Logger } from '../util/log.ts'

export interface Topic {
  readonly name: string
  readonly id: Buffer
  readonly dir: string
  configs: Record<string, string>
  partitions: PartitionLog[]
}

/** A topic operation refused with a Kafka error code. */
export class TopicError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.name = 'TopicError'
    this.code = code
  }
}

const MAX_TOPIC_NAME = 249
const LEGAL_TOPIC_NAME = /^[a-zA-Z0-9._-]+$/
const MAX_PARTITIONS = 10_000

/** Kafka's topic name rules (Topic.validate). Returns a reason, or undefined when valid. */
export function invalidTopicName(name: string | null): string | undefined {
  if (name === null || name.length === 0) return 'topic name is empty'
  if (name === '.' || name === '..') return `topic name cannot be "${name}"`
  if (name.length > MAX_TOPIC_NAME) return `topic name is longer than ${MAX_TOPIC_NAME} characters`
  if (!LEGAL_TOPIC_NAME.test(name))
    return `topic name "${name}" has characters other than ASCII alphanumerics, '.', '_' and '-'`
  return undefined
}

interface TopicFile {
  name: string
  id: string
  partitions: number
  configs: Record<string, string>
}

function writeFileDurably(path: string, text: string): void {
  const tmp = path + '.tmp'
  writeFileSync(tmp, text)
  const fd = openSync(tmp, 'r')
  fsyncSync(fd)
  closeSync(fd)
  renameSync(tmp, path)
}

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

export class TopicManager {
  private readonly byName = new Map<string, Topic>()
  private readonly byId = new Map<string, Topic>()
  private readonly logsDir: string
  private readonly config: BrokerConfig
  private readonly flusher: Flusher
  private readonly log: Logger

  constructor(dataDir: string, config: BrokerConfig, flusher: Flusher, log: Logger) {
    this.logsDir = join(dataDir, 'logs')
    this.config = config
    this.flusher = flusher
    this.log = log
  }

  /** Opens every topic on disk (recovering logs after a crash) and removes half-deleted ones. */
  load(now = Date.now()): void {
    mkdirSync(this.logsDir, { recursive: true })
    for (const entry of readdirSync(this.logsDir)) {
      const dir = join(this.logsDir, entry)
      const metaPath = join(dir, 'topic.json')
      if (!existsSync(metaPath)) {
        this.log.warn('removing the remains of a deleted topic', { dir })
        rmSync(dir, { recursive: true, force: true })
        continue
      }
      const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as TopicFile
      const topic: Topic = {
        name: meta.name,
        id: Buffer.from(meta.id, 'hex'),
        dir,
        configs: meta.configs,
        partitions: [],
      }
      for (let p = 0; p < meta.partitions; p++) {
        topic.partitions.push(this.openPartition(topic, p, now))
      }
      this.byName.set(topic.name, topic)
      this.byId.set(meta.id, topic)
      this.log.info('topic loaded', { topic: topic.name, partitions: meta.partitions })
    }
  }

  get(name: string): Topic | undefined {
    return this.byName.get(name)
  }

  getById(id: Buffer): Topic | undefined {
    return this.byId.get(id.toString('hex'))
  }

  list(): Topic[] {
    return [...this.byName.values()]
  }

  /** Checks a would-be topic; throws TopicError. Returns the partition count to use. */
  validateNew(name: string, partitions: number, replicationFactor: number, configs: Record<string, string>): number {
    const bad = invalidTopicName(name)
    if (bad !== undefined) throw new TopicError(ErrorCode.INVALID_TOPIC_EXCEPTION, bad)
    if (this.byName.has(name)) throw new TopicError(ErrorCode.TOPIC_ALREADY_EXISTS, `topic "${name}" already exists`)
    const count = partitions === -1 ? this.config.number('num.partitions') : partitions
    if (count < 1 || count > MAX_PARTITIONS) {
      throw new TopicError(
        ErrorCode.INVALID_PARTITIONS,
        `number of partitions must be between 1 and ${MAX_PARTITIONS}, got ${partitions}`,
      )
    }
    const rf = replicationFactor === -1 ? this.config.number('default.replication.factor') : replicationFactor
    if (rf !== 1) {
      throw new TopicError(
        ErrorCode.INVALID_REPLICATION_FACTOR,
        `replication factor ${rf} is larger than the 1 broker available`,
      )
    }
    try {
      validateTopicConfigs(configs)
    } catch (err) {
      if (err instanceof ConfigError) throw new TopicError(ErrorCode.INVALID_CONFIG, err.message)
      throw err
    }
    return count
  }

  create(name: string, partitions: number, configs: Record<string, string> = {}, now = Date.now()): Topic {
    const count = this.validateNew(name, partitions, 1, configs)
    const id = Buffer.from(randomUUID().replace(/-/g, ''), 'hex')
    const dir = join(this.logsDir, `${name}-${id.toString('hex')}`)
    mkdirSync(dir, { recursive: true })
    const topic: Topic = { name, id, dir, configs: { ...configs }, partitions: [] }
    for (let p = 0; p < count; p++) {
      topic.partitions.push(this.openPartition(topic, p, now))
    }
    this.writeMeta(topic)
    fsyncDir(this.logsDir)
    this.byName.set(name, topic)
    this.byId.set(id.toString('hex'), topic)
    this.log.info('topic created', { topic: name, partitions: count, configs })
    return topic
  }

  /** Grows a topic to `total` partitions. */
  addPartitions(name: string, total: number, validateOnly = false, now = Date.now()): void {
    const topic = this.byName.get(name)
    if (topic === undefined)
      throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${name}" does not exist`)
    const current = topic.partitions.length
    if (total <= current) {
      throw new TopicError(
        ErrorCode.INVALID_PARTITIONS,
        `topic "${name}" has ${current} partitions; the new count must be larger, got ${total}`,
      )
    }
    if (total > MAX_PARTITIONS)
      throw new TopicError(ErrorCode.INVALID_PARTITIONS, `at most ${MAX_PARTITIONS} partitions`)
    if (validateOnly) return
    for (let p = current; p < total; p++) {
      topic.partitions.push(this.openPartition(topic, p, now))
    }
    this.writeMeta(topic)
    this.log.info('partitions added', { topic: name, partitions: total })
  }

  /** Removes a topic: gone for new requests at once; files removed once in-flight I/O is done. */
  async delete(name: string): Promise<void> {
    const topic = this.byName.get(name)
    if (topic === undefined)
      throw new TopicError(ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, `topic "${name}" does not exist`)
    this.byName.delete(name)
    this.byId.delete(topic.id.toString('hex'))
    unlinkSync(join(topic.dir, 'topic.json'))
    fsyncDir(topic.dir)
    await Promise.all(topic.partitions.map((p) => p.delete()))
    rmSync(topic.dir, { recursive: true, force: true })
    this.log.info('topic deleted', { topic: name })
  }

  private openPartition(topic: Topic, partition: number, now: number): PartitionLog {
    const dir = join(topic.dir, String(partition))
    return PartitionLog.open(dir, this.logConfig(topic), this.flusher, now, { topicId: topic.id, partition })
  }

  logConfig(topic: Topic): LogConfig {
    const value = (key: string) => Number(topic.configs[key] ?? this.config.topicDefault(key))
    return {
      segmentBytes: value('segment.bytes'),
      segmentMs: value('segment.ms'),
      retentionMs: value('retention.ms'),
      retentionBytes: value('retention.bytes'),
      indexIntervalBytes: value('index.interval.bytes'),
      visibleWhenDurable: this.config.get('cortado.fsync') === 'ack',
    }
  }

  /** A topic config's effective value. */
  topicConfig(topic: Topic, key: string): string {
    return topic.configs[key] ?? this.config.topicDefault(key)
  }

  describe(topic: Topic): ReturnType<typeof topicConfigEntries> {
    return topicConfigEntries(this.config, topic.configs)
  }

  applyRetention(now = Date.now()): void {
    for (const topic of this.byName.values()) {
      // cleanup.policy=compact alone: no time or size retention, as in Kafka (compact,delete: both).
      if (!this.cleanupPolicies(topic).includes('delete')) continue
      for (const [p, log] of topic.partitions.entries()) {
        const deleted = log.applyRetention(now)
        if (deleted > 0)
          this.log.info('retention deleted segments', {
            topic: topic.name,
            partition: p,
            segments: deleted,
            logStartOffset: log.logStartOffset,
          })
      }
    }
  }

  /** A topic's cleanup.policy as a list (delete, compact). */
  cleanupPolicies(topic: Topic): string[] {
    return this.topicConfig(topic, 'cleanup.policy')
      .split(',')
      .map((p) => p.trim())
  }

  /** Whether produce must refuse null keys: the topic is compacted. */
  isCompacted(topic: Topic): boolean {
    return this.cleanupPolicies(topic).includes('compact')
  }

  compactionConfig(topic: Topic): CompactionConfig {
    const value = (key: string) => Number(this.topicConfig(topic, key))
    return {
      deleteRetentionMs: value('delete.retention.ms'),
      minCompactionLagMs: value('min.compaction.lag.ms'),
      maxCompactionLagMs: value('max.compaction.lag.ms'),
      minCleanableRatio: value('min.cleanable.dirty.ratio'),
      segmentBytes: value('segment.bytes'),
    }
  }

  /** The partitions of compacted topics, for the log cleaner. */
  compactedLogs(): CleanerTarget[] {
    const out: CleanerTarget[] = []
    for (const topic of this.byName.values()) {
      if (!this.isCompacted(topic)) continue
      const config = this.compactionConfig(topic)
      const alsoDelete = this.cleanupPolicies(topic).includes('delete')
      topic.partitions.forEach((log, p) => {
        const afterRound = alsoDelete ? () => this.retainPartition(topic, p, log, Date.now()) : undefined
        out.push({ name: `${topic.name}-${p}`, log, config, afterRound })
      })
    }
    return out
  }

  private retainPartition(topic: Topic, p: number, log: PartitionLog, now: number): void {
    if (log.isClosed) return
    const deleted = log.applyRetention(now)
    if (deleted > 0)
      this.log.info('retention deleted segments', {
        topic: topic.name,
        partition: p,
        segments: deleted,
        logStartOffset: log.logStartOffset,
      })
  }

  async close(): Promise<void> {
    const all = [...this.byName.values()].flatMap((t) => t.partitions)
    this.byName.clear()
    this.byId.clear()
    await Promise.all(all.map((p) => p.close()))
  }

  private writeMeta(topic: Topic): void {
    const meta: TopicFile = {
      name: topic.name,
      id: topic.id.toString('hex'),
      partitions: topic.partitions.length,
      configs: topic.configs,
    }
    writeFileDurably(join(topic.dir, 'topic.json'), JSON.stringify(meta, null, 2) + '\n')
    fsyncDir(topic.dir)
  }
}
