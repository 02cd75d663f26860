// The calling end (the router's or the client library's) of the pipelined channel to one storage
// node (../node-rpc.ts): one connection, opened with an HTTP Upgrade on the node's HTTP port and
// reopened on the next call after it breaks. Calls of one event-loop turn go out in one write.
//
// What a caller learns when a call fails matters to it (a write whose outcome is unknown
// must not be retried): a call that never left this process (the connection could not be opened,
// or broke before the call was written) is `sent: false`; once written, `sent: true`.
import { request } from 'node:http'
import { type Socket } from 'node:net'
import { clusterSecretHeaders } from '../node-api.ts'
import {
  CoalescingWriter,
  decodeResponse,
  encodeRequest,
  FrameReader,
  RPC_UPGRADE,
  type RpcMethod,
  type RpcResponse,
} from '../node-rpc.ts'

export class ChannelError extends Error {
  override readonly name = 'ChannelError'
  /** Whether the call had been written to the connection (so the node may have run it). */
  readonly sent: boolean
  /** Set when the node does not speak the channel (it answered the upgrade with plain HTTP). */
  readonly unsupported: boolean
  readonly code: string | undefined
  constructor(message: string, o: { sent: boolean; unsupported?: boolean; code?: string; cause?: unknown }) {
    super(message, { cause: o.cause })
    this.sent = o.sent
    this.unsupported = o.unsupported ?? false
    this.code = o.code
  }
}

/** Most calls waiting at once on one channel: beyond that a call is refused, not queued. */
const MAX_PENDING = 65_536

interface Pending {
  resolve: (r: RpcResponse) => void
  reject: (e: ChannelError) => void
  /** performance.now() after which the call is failed. */
  deadline: number
  sent: boolean
}

interface Connection {
  /** Set once the upgrade is done. */
  socket: Socket | undefined
  /** Frames of calls made before the upgrade was done, written right after it. */
  early: Buffer[]
  writer: CoalescingWriter
  /** Ids of the calls not yet written. */
  unsent: number[]
  /** Set by the first sign of its end (FIN, close, error): later ones must not touch newer calls. */
  lost: boolean
}

export class NodeChannel {
  readonly #url: URL
  readonly #timeoutMs: number
  readonly #pending = new Map<number, Pending>()
  #nextId = 1
  #connection: Connection | undefined
  /** One timer for every call's deadline, armed while calls wait. */
  #sweep: NodeJS.Timeout | undefined
  #closed = false

  readonly #clusterSecret: string | undefined

  constructor(url: string, timeoutMs: number, clusterSecret?: string) {
    this.#url = new URL(url)
    this.#timeoutMs = timeoutMs
    this.#clusterSecret = clusterSecret
  }

  call(method: RpcMethod, path: string, body?: string, timeoutMs = this.#timeoutMs): Promise<RpcResponse> {
    if (this.#closed) return Promise.reject(new ChannelError('channel closed', { sent: false }))
    if (this.#pending.size >= MAX_PENDING)
      return Promise.reject(new ChannelError(`${MAX_PENDING} calls already waiting on the node`, { sent: false }))
    const id = this.#nextId
    this.#nextId = this.#nextId === 0xffffffff ? 1 : this.#nextId + 1
    const frame = encodeRequest(id, method, path, body)
    const connection = (this.#connection ??= this.#connect())
    return new Promise<RpcResponse>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, deadline: performance.now() + timeoutMs, sent: false })
      connection.unsent.push(id)
      if (connection.socket === undefined) connection.early.push(frame)
      else connection.writer.push(frame)
      this.#armSweep()
    })
  }

  #connect(): Connection {
    const connection: Connection = {
      socket: undefined,
      early: [],
      unsent: [],
      lost: false,
      writer: new CoalescingWriter((data) => {
        for (const id of connection.unsent) {
          const p = this.#pending.get(id)
          if (p !== undefined) p.sent = true
        }
        connection.unsent = []
        connection.socket?.write(data)
      }),
    }
    const req = request({
      host: this.#url.hostname,
      port: this.#url.port,
      path: '/_node/rpc',
      headers: { connection: 'Upgrade', upgrade: RPC_UPGRADE, ...clusterSecretHeaders(this.#clusterSecret) },
    })
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      if (this.#connection !== connection || this.#closed) {
        socket.destroy()
        return
      }
      // The upgrade request's timeout belongs to the handshake, not to the channel's idle time.
      socket.setTimeout(0)
      socket.removeAllListeners('timeout')
      socket.setNoDelay(true)
      connection.socket = socket
      const reader = new FrameReader()
      const onData = (chunk: Buffer) => {
        try {
          for (const frame of reader.push(chunk)) this.#answer(decodeResponse(frame))
        } catch (error) {
          socket.destroy(error as Error)
        }
      }
      socket.on('data', onData)
      socket.on('error', () => undefined)
      // The node never half-closes the channel: its FIN means it is gone (killed, say). Failing
      // the calls at the FIN, not at the later 'close', keeps calls not yet written out of a dead
      // connection: they fail as not sent (and are retried) instead of as outcome unknown.
      socket.on('end', () => this.#lost(connection, 'the node closed the connection'))
      socket.on('close', () => this.#lost(connection, 'connection to the node closed'))
      if (head.length > 0) onData(head)
      for (const frame of connection.early) connection.writer.push(frame)
      connection.early = []
      connection.writer.flush()
    })
    req.on('response', (res) => {
      res.resume()
      this.#lost(connection, `node answered the channel upgrade with HTTP ${res.statusCode}`, true)
    })
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (connection.socket === undefined) this.#lost(connection, error.message, false, error.code)
    })
    // Like the HTTP pool's connect timeout: a node that does not answer the upgrade is unreachable.
    req.setTimeout(2000, () =>
      req.destroy(Object.assign(new Error('channel upgrade timed out'), { code: 'UND_ERR_CONNECT_TIMEOUT' })),
    )
    req.end()
    return connection
  }

  #answer(r: RpcResponse): void {
    const p = this.#pending.get(r.id)
    if (p === undefined) return // answered after its deadline
    this.#pending.delete(r.id)
    p.resolve(r)
  }

  /** The connection is gone: every call on it fails (sent or not), and the next call reconnects. */
  #lost(connection: Connection, why: string, unsupported = false, code?: string): void {
    // Every pending call is on the current connection; once it is lost, calls go to a new one.
    if (connection.lost) return
    connection.lost = true
    if (this.#connection === connection) this.#connection = undefined
    connection.writer.discard()
    connection.socket?.destroy()
    for (const [id, p] of this.#pending) {
      this.#pending.delete(id)
      p.reject(new ChannelError(why, { sent: p.sent, unsupported, code }))
    }
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return
    this.#sweep = setInterval(() => {
      const now = performance.now()
      for (const [id, p] of this.#pending) {
        if (p.deadline > now) continue
        this.#pending.delete(id)
        p.reject(new ChannelError(`no answer within the timeout`, { sent: p.sent, code: 'UND_ERR_HEADERS_TIMEOUT' }))
      }
      if (this.#pending.size === 0) {
        clearInterval(this.#sweep)
        this.#sweep = undefined
      }
    }, 100)
    this.#sweep.unref()
  }

  close(): void {
    this.#closed = true
    clearInterval(this.#sweep)
    this.#sweep = undefined
    if (this.#connection !== undefined) this.#lost(this.#connection, 'channel closed')
  }
}
