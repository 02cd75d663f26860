// The router's HTTP client for storage nodes: one keep-alive connection pool per node, JSON in
// and out, and errors as values the router can reason about: the node's own DbError, or
// NodeUnreachableError saying whether the request may have reached the node.
import { Pool } from 'undici'
import { DbError, isDbErrorCode } from '../errors.ts'

export class NodeUnreachableError extends Error {
  override readonly name = 'NodeUnreachableError'
  /** False when the connection was refused (the request certainly did not run). */
  readonly maybeExecuted: boolean
  constructor(url: string, cause: unknown, maybeExecuted: boolean) {
    super(`storage node ${url} unreachable: ${cause instanceof Error ? cause.message : String(cause)}`, { cause })
    this.maybeExecuted = maybeExecuted
  }
}

const NOT_SENT_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

function errorCode(error: unknown): string | undefined {
  const e = error as { code?: string; cause?: { code?: string } }
  return e.code ?? e.cause?.code
}

/** The DbError a node answered with (its JSON error body), or INTERNAL for anything else. */
function errorFrom(url: string, status: number, text: string): DbError {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return new DbError('INTERNAL', `storage node ${url} answered ${status} with a body that is not JSON`)
  }
  const e = (parsed as { error?: { code?: unknown; message?: unknown; details?: unknown } } | null)?.error
  if (e !== undefined && isDbErrorCode(e.code))
    return new DbError(e.code, String(e.message), Array.isArray(e.details) ? e.details.map(String) : [])
  return new DbError('INTERNAL', `storage node ${url} answered ${status}`)
}

export class NodeClient {
  readonly #pools = new Map<string, Pool>()
  readonly #timeoutMs: number

  constructor(timeoutMs = 30_000) {
    this.#timeoutMs = timeoutMs
  }

  #pool(url: string): Pool {
    let pool = this.#pools.get(url)
    if (pool === undefined) {
      pool = new Pool(url, {
        connections: 128,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        connectTimeout: 2000,
      })
      this.#pools.set(url, pool)
    }
    return pool
  }

  async post<T>(url: string, path: string, body: unknown): Promise<T> {
    return this.#request<T>(url, 'POST', path, JSON.stringify(body))
  }

  async get<T>(url: string, path: string, timeoutMs?: number): Promise<T> {
    return this.#request<T>(url, 'GET', path, undefined, timeoutMs)
  }

  /**
   * GET of one document as the node stores it: its JSON text passed through untouched, with its
   * ETag and schema version from the headers. A refusal is thrown as the node's DbError.
   */
  async getDocument(
    url: string,
    path: string,
  ): Promise<{ text: string; etag: string; schemaVersion: number; applied?: string; logAgeMs?: string }> {
    let res
    try {
      res = await this.#pool(url).request({ method: 'GET', path })
    } catch (error) {
      throw new NodeUnreachableError(url, error, !NOT_SENT_CODES.has(errorCode(error) ?? ''))
    }
    let text: string
    try {
      text = await res.body.text()
    } catch (error) {
      throw new NodeUnreachableError(url, error, true)
    }
    if (res.statusCode === 200) {
      const applied = res.headers['x-cortado-applied']
      const age = res.headers['x-cortado-log-age-ms']
      return {
        text,
        etag: String(res.headers.etag),
        schemaVersion: Number(res.headers['x-cortado-schema-version']),
        ...(typeof applied === 'string' ? { applied } : {}),
        ...(typeof age === 'string' ? { logAgeMs: age } : {}),
      }
    }
    throw errorFrom(url, res.statusCode, text)
  }

  async #request<T>(
    url: string,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs?: number,
  ): Promise<T> {
    let res
    try {
      res = await this.#pool(url).request({
        method,
        path,
        body,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(timeoutMs === undefined ? {} : { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }),
      })
    } catch (error) {
      throw new NodeUnreachableError(url, error, !NOT_SENT_CODES.has(errorCode(error) ?? ''))
    }
    let text: string
    try {
      text = await res.body.text()
    } catch (error) {
      throw new NodeUnreachableError(url, error, true)
    }
    if (res.statusCode < 200 || res.statusCode >= 300) throw errorFrom(url, res.statusCode, text)
    try {
      return JSON.parse(text) as T
    } catch {
      throw new DbError('INTERNAL', `storage node ${url} answered ${res.statusCode} with a body that is not JSON`)
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()))
    this.#pools.clear()
  }
}
