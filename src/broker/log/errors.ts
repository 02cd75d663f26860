// Typed errors of the partition log. `code` is the Kafka error code a handler should return.

import { ErrorCode } from '../../protocol/errors.ts'

export class LogError extends Error {
  readonly code: number
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'LogError'
    this.code = code
  }
}

export class OffsetOutOfRangeError extends LogError {
  readonly offset: number
  readonly logStartOffset: number
  readonly logEndOffset: number
  constructor(offset: number, logStartOffset: number, logEndOffset: number) {
    super(
      ErrorCode.OFFSET_OUT_OF_RANGE,
      `offset ${offset} is outside the log range [${logStartOffset}, ${logEndOffset}]`,
    )
    this.name = 'OffsetOutOfRangeError'
    this.offset = offset
    this.logStartOffset = logStartOffset
    this.logEndOffset = logEndOffset
  }
}

/** The log was closed or deleted (e.g. broker shutdown, topic deletion): retriable for clients. */
export class LogClosedError extends LogError {
  constructor(dir: string) {
    super(ErrorCode.NOT_LEADER_OR_FOLLOWER, `log ${dir} is closed`)
    this.name = 'LogClosedError'
  }
}

/** An I/O failure (write, fsync): the data may not be durable. */
export class LogStorageError extends LogError {
  constructor(message: string, cause?: unknown) {
    super(ErrorCode.KAFKA_STORAGE_ERROR, message, cause === undefined ? undefined : { cause })
    this.name = 'LogStorageError'
  }
}
