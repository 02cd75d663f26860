// The client for storage nodes, used by the router and by the client library (../client/): each
// call goes over the node's pipelined channel (node-channel.ts; calls of one event-loop turn share
// a write), or over HTTP with a keep-alive pool for a node that does not offer the channel. JSON in
// and out, and errors as values a caller can reason about: the node's own DbError, or
// NodeUnreachableError saying whether the request may have reached the node.
import { Pool } from 'undici'
import { DbError, isDbErrorCode } from '../errors.ts'
import { clusterSecretHeaders } from '../node-api.ts'
import { ChannelError, NodeChannel } from './node-channel.ts'

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

/** A node's answer, whichever way it came. */
interface Answer {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
}

export class NodeClient {
  readonly #pools = new Map<string, Pool>()
  readonly #channels = new Map<string, NodeChannel>()
  /** Nodes that answered the channel upgrade with plain HTTP: called over HTTP from then on. */
  readonly #httpOnly = new Set<string>()
  readonly #timeoutMs: number
  readonly #clusterSecret: string | undefined

  /** `clusterSecret`: sent with every call, when the cluster has one (node-api.ts CLUSTER_SECRET_HEADER). */
  constructor(timeoutMs = 30_000, clusterSecret?: string) {
    this.#timeoutMs = timeoutMs
    this.#clusterSecret = clusterSecret
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
    const res = await this.#call(url, 'GET', path, undefined)
    if (res.status === 200) {
      const applied = res.headers['x-cortado-applied']
      const age = res.headers['x-cortado-log-age-ms']
      return {
        text: res.text,
        etag: String(res.headers.etag),
        schemaVersion: Number(res.headers['x-cortado-schema-version']),
        ...(typeof applied === 'string' ? { applied } : {}),
        ...(typeof age === 'string' ? { logAgeMs: age } : {}),
      }
    }
    throw errorFrom(url, res.status, res.text)
  }

  async #request<T>(
    url: string,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs?: number,
  ): Promise<T> {
    const res = await this.#call(url, method, path, body, timeoutMs)
    if (res.status < 200 || res.status >= 300) throw errorFrom(url, res.status, res.text)
    try {
      return JSON.parse(res.text) as T
    } catch {
      throw new DbError('INTERNAL', `storage node ${url} answered ${res.status} with a body that is not JSON`)
    }
  }

  /** One call, over the node's channel unless it has none. */
  async #call(
    url: string,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs?: number,
  ): Promise<Answer> {
    if (!this.#httpOnly.has(url)) {
      let channel = this.#channels.get(url)
      if (channel === undefined)
        this.#channels.set(url, (channel = new NodeChannel(url, this.#timeoutMs, this.#clusterSecret)))
      try {
        const res = await channel.call(method, path, body, timeoutMs)
        return { status: res.status, headers: res.headers, text: res.body.toString('utf8') }
      } catch (error) {
        if (!(error instanceof ChannelError)) throw error
        if (!error.unsupported) throw new NodeUnreachableError(url, error, error.sent)
        // An older node: the call never reached it, so it goes over HTTP.
        this.#httpOnly.add(url)
        this.#channels.delete(url)
        channel.close()
      }
    }
    return this.#httpCall(url, method, path, body, timeoutMs)
  }

  async #httpCall(
    url: string,
    method: 'GET' | 'POST',
    path: string,
    body: string | undefined,
    timeoutMs?: number,
  ): Promise<Answer> {
    let res
    try {
      res = await this.#pool(url).request({
        method,
        path,
        body,
        headers: {
          ...clusterSecretHeaders(this.#clusterSecret),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(timeoutMs === undefined ? {} : { headersTimeout: timeoutMs, bodyTimeout: timeoutMs }),
      })
    } catch (error) {
      throw new NodeUnreachableError(url, error, !NOT_SENT_CODES.has(errorCode(error) ?? ''))
    }
    try {
      return { status: res.statusCode, headers: res.headers, text: await res.body.text() }
    } catch (error) {
      throw new NodeUnreachableError(url, error, true)
    }
  }

  async close(): Promise<void> {
    for (const channel of this.#channels.values()) channel.close()
    this.#channels.clear()
    await Promise.all([...this.#pools.values()].map((p) => p.close()))
    this.#pools.clear()
  }
}
