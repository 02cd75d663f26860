// Typed database errors: a code clients can branch on, the HTTP status it maps to, and details.
// Every refusal the router or a storage node gives is one of these.

export type DbErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_DOCUMENT'
  | 'INVALID_SCHEMA'
  | 'INCOMPATIBLE_SCHEMA'
  | 'INVALID_DATABASE'
  | 'UNKNOWN_DATABASE'
  | 'UNKNOWN_TABLE'
  | 'UNKNOWN_PARTITION'
  | 'UNKNOWN_NODE'
  | 'NOT_FOUND'
  | 'DATABASE_EXISTS'
  | 'PRECONDITION_FAILED'
  | 'CROSS_GROUP_TRANSACTION'
  | 'PAYLOAD_TOO_LARGE'
  | 'NOT_ENOUGH_NODES'
  | 'NO_MASTER'
  | 'NOT_MASTER'
  | 'NOT_APPLIED'
  | 'MASTER_ERROR'
  | 'MASTER_LEASE_EXPIRED'
  | 'REPLICA_NOT_READY'
  | 'TIMEOUT'
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'INVALID_USER'
  | 'UNKNOWN_USER'
  | 'UNKNOWN_TOKEN'
  | 'INTERNAL'

const STATUS: Record<DbErrorCode, number> = {
  BAD_REQUEST: 400,
  INVALID_DOCUMENT: 400,
  INVALID_SCHEMA: 400,
  INCOMPATIBLE_SCHEMA: 409,
  INVALID_DATABASE: 400,
  UNKNOWN_DATABASE: 404,
  UNKNOWN_TABLE: 404,
  UNKNOWN_PARTITION: 404,
  UNKNOWN_NODE: 404,
  NOT_FOUND: 404,
  DATABASE_EXISTS: 409,
  PRECONDITION_FAILED: 412,
  CROSS_GROUP_TRANSACTION: 400,
  PAYLOAD_TOO_LARGE: 413,
  NOT_ENOUGH_NODES: 409,
  NO_MASTER: 503,
  NOT_MASTER: 503,
  NOT_APPLIED: 503,
  MASTER_ERROR: 503,
  MASTER_LEASE_EXPIRED: 503,
  REPLICA_NOT_READY: 503,
  TIMEOUT: 504,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  INVALID_USER: 400,
  UNKNOWN_USER: 404,
  UNKNOWN_TOKEN: 404,
  INTERNAL: 500,
}

/** Codes after which the request is known not to have been applied, so it is safe to resend. */
// MASTER_ERROR is among them: a fenced master refuses before writing anything, and by then the
// metadata names (or is about to name) another master. MASTER_LEASE_EXPIRED likewise: a master
// whose lease ran out refuses before reading or writing anything (docs/database.md, "Master lease").
export const RETRIABLE_CODES: ReadonlySet<DbErrorCode> = new Set([
  'NO_MASTER',
  'NOT_MASTER',
  'NOT_APPLIED',
  'REPLICA_NOT_READY',
  'MASTER_ERROR',
  'MASTER_LEASE_EXPIRED',
])

export class DbError extends Error {
  readonly code: DbErrorCode
  readonly status: number
  readonly details: readonly string[]
  constructor(code: DbErrorCode, message: string, details: readonly string[] = []) {
    super(message)
    this.name = 'DbError'
    this.code = code
    this.status = STATUS[code]
    this.details = details
  }

  toJSON(): { error: { code: DbErrorCode; message: string; details?: readonly string[] } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details.length > 0 ? { details: this.details } : {}) },
    }
  }
}

export function isDbErrorCode(code: unknown): code is DbErrorCode {
  return typeof code === 'string' && code in STATUS
}
