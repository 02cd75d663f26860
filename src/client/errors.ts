// Typed errors of the client layer (src/client/). Every error carries a stable string `code`
// that callers can switch on; Kafka failures also carry the broker's numeric error code.
//
// Kafka error codes in src/client and src/db come from @platformatic/kafka's `protocolErrors`
// table, not from src/protocol/errors.ts (the broker's table): these layers may not import the
// broker's codecs (invariant 1, docs/invariants.md), and the library fills its errors' `apiCode`
// from that same table, so comparing with it cannot drift from what the library reports.
import { protocolErrors } from '@platformatic/kafka'

/** Base class of every error the client layer raises. */
export class ClientError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** The cause of a failed send, as far as the Kafka client library reported it. */
export interface KafkaErrorInfo {
  /** The Kafka protocol error code (e.g. 10 MESSAGE_TOO_LARGE, 87 INVALID_RECORD), or -1 when the failure was not a broker error. */
  kafkaCode: number
  /** The Kafka protocol error name (e.g. 'MESSAGE_TOO_LARGE'), or the library's error code when not a broker error. */
  kafkaName: string
  /** The broker's detailed message, when it sent one. */
  serverMessage: string | undefined
}

/**
 * A record could not be written (a non-retriable error, or a failure of the client itself).
 * `code` is 'PRODUCER_SEND_FAILED'.
 */
export class ProducerSendError extends ClientError {
  static readonly CODE = 'PRODUCER_SEND_FAILED'
  readonly kafkaCode: number
  readonly kafkaName: string
  readonly serverMessage: string | undefined

  constructor(message: string, info: KafkaErrorInfo, options?: { cause?: unknown }) {
    super(ProducerSendError.CODE, message, options)
    this.kafkaCode = info.kafkaCode
    this.kafkaName = info.kafkaName
    this.serverMessage = info.serverMessage
  }
}

/**
 * A record was queued (or waiting for room) behind a record that failed, so it was not sent.
 * `code` is 'RECORD_ABANDONED'; `failure` is the send error of the record that failed first.
 */
export class RecordAbandonedError extends ClientError {
  static readonly CODE = 'RECORD_ABANDONED'
  readonly failure: ProducerSendError

  constructor(failure: ProducerSendError) {
    super(
      RecordAbandonedError.CODE,
      `record not sent: an earlier record failed (${failure.kafkaName}: ${failure.message})`,
      { cause: failure },
    )
    this.failure = failure
  }
}

/** send() after close(). `code` is 'PRODUCER_CLOSED'. */
export class ProducerClosedError extends ClientError {
  static readonly CODE = 'PRODUCER_CLOSED'

  constructor() {
    super(ProducerClosedError.CODE, 'the producer is closed')
  }
}

/** Walks an error, its `errors` (AggregateError) and its `cause`, depth first. */
export function* errorChain(error: unknown, depth = 0): Generator<Record<string, unknown>> {
  if (depth > 8 || error === null || typeof error !== 'object') return
  const e = error as Record<string, unknown>
  yield e
  if (Array.isArray(e.errors)) for (const inner of e.errors) yield* errorChain(inner, depth + 1)
  if ('cause' in e) yield* errorChain(e.cause, depth + 1)
}

/**
 * Whether the Kafka error `id` (Kafka's name, e.g. 'TOPIC_ALREADY_EXISTS') is among the protocol
 * errors behind an error of @platformatic/kafka. Decided by error code, never by message text.
 */
export function hasKafkaError(error: unknown, id: string): boolean {
  const known = protocolErrors[id] as { code: number } | undefined
  if (known === undefined) throw new Error(`unknown Kafka error ${id}`)
  for (const e of errorChain(error)) if (e.apiCode === known.code) return true
  return false
}

/**
 * Whether the error says the broker does not offer an API the client needed (it did not list it
 * in its ApiVersions answer): @platformatic/kafka fails such a call at once, without a request.
 */
export function isUnsupportedApi(error: unknown): boolean {
  for (const e of errorChain(error)) if (e.code === 'PLT_KFK_UNSUPPORTED_API') return true
  return false
}

/**
 * A topic Kafka would not create (or let us use), said in one sentence an operator can act on:
 * what failed, why, and what to create beforehand. `code` is 'KAFKA_TOPIC'.
 */
export class KafkaTopicError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('KAFKA_TOPIC', message, options)
  }
}

/**
 * Why Kafka would not do what was asked, when it refused outright: it does not offer the API (a
 * locked-down or partial Kafka, such as librdkafka's mock cluster), or an ACL denies it. Undefined
 * for any other failure (those may be retried).
 */
export function kafkaRefusal(error: unknown): string | undefined {
  if (isUnsupportedApi(error)) return 'this Kafka does not offer the API'
  for (const id of ['TOPIC_AUTHORIZATION_FAILED', 'CLUSTER_AUTHORIZATION_FAILED'])
    if (hasKafkaError(error, id)) return `this Kafka refused it (${id})`
  return undefined
}

/**
 * The Kafka error behind an error of @platformatic/kafka: the first protocol error in the chain
 * (preferring a non-retriable one), else the library's own code.
 */
export function kafkaErrorInfo(error: unknown): KafkaErrorInfo {
  let found: Record<string, unknown> | undefined
  for (const e of errorChain(error)) {
    if (typeof e.apiCode === 'number') {
      if (found === undefined) found = e
      if (e.canRetry === false) {
        found = e
        break
      }
    }
  }
  if (found !== undefined) {
    return {
      kafkaCode: found.apiCode as number,
      kafkaName: typeof found.apiId === 'string' ? found.apiId : 'UNKNOWN',
      serverMessage: typeof found.serverErrorMessage === 'string' ? found.serverErrorMessage : undefined,
    }
  }
  const top = typeof error === 'object' && error !== null ? (error as Record<string, unknown>) : {}
  return {
    kafkaCode: -1,
    kafkaName: typeof top.code === 'string' ? top.code : 'CLIENT_ERROR',
    serverMessage: undefined,
  }
}
