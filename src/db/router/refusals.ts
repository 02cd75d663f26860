// How the router turns what went wrong into the API's typed error answer: fastify's own errors
// (validation, body parsing, size) and unexpected ones mapped to database error codes. Used by
// the fastify routes and by the fast path (document-fast-path.ts), so both refuse alike.
import { type FastifyError } from 'fastify'
import { DbError } from '../errors.ts'

/** Maps fastify's own errors (validation, body parsing, size) to typed database errors. */
export function toDbError(error: FastifyError | DbError): DbError {
  if (error instanceof DbError) return error
  const fe = error
  if (fe.validation !== undefined)
    return new DbError(
      'BAD_REQUEST',
      `invalid request: ${fe.message}`,
      fe.validation.map((v) => `${v.instancePath || fe.validationContext || ''} ${v.message ?? ''}`.trim()),
    )
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new DbError('PAYLOAD_TOO_LARGE', fe.message)
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
    return new DbError('BAD_REQUEST', `${fe.message} (send application/json)`)
  if (fe.statusCode !== undefined && fe.statusCode >= 400 && fe.statusCode < 500)
    return new DbError('BAD_REQUEST', fe.message)
  return new DbError('INTERNAL', fe.message)
}

/**
 * Headers of a refusal beyond its status: a 503 (no master yet) says when to retry, a 401 which
 * credentials the API takes (RFC 9110: a 401 must carry WWW-Authenticate).
 */
export function refusalHeaders(e: DbError): Record<string, string> {
  if (e.status === 503) return { 'retry-after': '1' }
  if (e.status === 401) return { 'www-authenticate': 'Basic realm="cortado", Bearer realm="cortado"' }
  return {}
}
