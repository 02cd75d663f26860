// LargeMessageProducer: splits a value larger than the segment size into `_lm` segment records
// (segment.ts) and sends them through an injected send function (ReliableProducer.send, or any
// function of that shape). Its promise settles once: after every segment is acknowledged, with
// the offset of the last segment (the offset of the large message), or with a
// LargeMessageSendError naming how many segments were sent, like li-apache-kafka-clients'
// LargeMessageCallback ("Sent x of n segments").
import { randomUUID } from 'node:crypto'
import { DEFAULT_SEGMENT_SIZE, type OutgoingRecord, splitRecord } from './segment.ts'

export interface RecordAck {
  topic: string
  partition: number
  offset: number | bigint
}

export type SendFunction = (record: OutgoingRecord) => Promise<RecordAck>

export interface LargeMessageProducerOptions {
  send: SendFunction
  /** Largest segment value in bytes; larger values are split (default 800,000). */
  segmentSize?: number
  /** Segments of one message awaiting acknowledgement at once (default 5). */
  maxInFlight?: number
  /** 16-byte message ids (default: random UUIDs). */
  messageId?: () => Buffer
}

export interface LargeMessageAck {
  topic: string
  partition: number
  /** Offset of the last segment. */
  offset: number | bigint
  /** Message id (16 bytes), when the value was split. */
  messageId: Buffer | null
  segments: number
}

export class LargeMessageSendError extends Error {
  override readonly name = 'LargeMessageSendError'
  /** Segments acknowledged. */
  readonly sent: number
  readonly total: number
  constructor(sent: number, total: number, cause: unknown) {
    super(`Sent ${sent} of ${total} segments: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.sent = sent
    this.total = total
  }
}

export function randomMessageId(): Buffer {
  return Buffer.from(randomUUID().replaceAll('-', ''), 'hex')
}

export class LargeMessageProducer {
  readonly #send: SendFunction
  readonly #segmentSize: number
  readonly #maxInFlight: number
  readonly #messageId: () => Buffer

  constructor(options: LargeMessageProducerOptions) {
    this.#send = options.send
    this.#segmentSize = options.segmentSize ?? DEFAULT_SEGMENT_SIZE
    this.#maxInFlight = options.maxInFlight ?? 5
    this.#messageId = options.messageId ?? randomMessageId
    if (!Number.isInteger(this.#maxInFlight) || this.#maxInFlight < 1)
      throw new RangeError(`maxInFlight must be a positive integer, got ${this.#maxInFlight}`)
  }

  get segmentSize(): number {
    return this.#segmentSize
  }

  /** The segment records a record would be sent as (for tests and tools). */
  split(record: OutgoingRecord, messageId: Buffer = this.#messageId()): OutgoingRecord[] {
    return splitRecord(record, this.#segmentSize, messageId)
  }

  async send(record: OutgoingRecord): Promise<LargeMessageAck> {
    const split = record.value !== null && record.value.length > this.#segmentSize
    const messageId = split ? this.#messageId() : null
    const segments = messageId === null ? [record] : splitRecord(record, this.#segmentSize, messageId)
    const acks = new Array<RecordAck | undefined>(segments.length)
    let sent = 0
    let failure: { error: unknown } | undefined
    let next = 0
    // Up to maxInFlight sends outstanding; segments are handed to send() in order, and nothing
    // more is handed over once one has failed.
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < segments.length) {
        const i = next++
        try {
          acks[i] = await this.#send(segments[i])
          sent++
        } catch (error) {
          failure ??= { error }
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.#maxInFlight, segments.length) }, worker))
    if (failure !== undefined) throw new LargeMessageSendError(sent, segments.length, failure.error)
    const last = acks[segments.length - 1]!
    return { topic: last.topic, partition: last.partition, offset: last.offset, messageId, segments: segments.length }
  }
}
