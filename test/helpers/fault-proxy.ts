// A TCP proxy in front of the broker that loses produce responses: it forwards every request,
// and for chosen produce requests it lets the broker append (and answer) but drops the answer and
// closes the client's connection. The client cannot tell whether the batch was written, so it
// sends it again; an idempotent producer must end up with each record once. Metadata and
// FindCoordinator responses are rewritten to name the proxy, so clients keep coming back
// through it rather than connecting to the broker directly.
//
// It can also cut the process behind it off from the broker altogether (cut(): every connection
// through it is closed and new ones are closed as they arrive) and let it back (heal()): a
// process that is alive but cannot reach the log.
import { createServer, connect, type Server, type Socket } from 'node:net'
import { APIS } from '../../src/protocol/apis.ts'
import { Reader } from '../../src/protocol/reader.ts'
import { decode, encode, isFlexible } from '../../src/protocol/schema.ts'
import { Writer } from '../../src/protocol/writer.ts'

export interface FaultProxyOptions {
  /** Produce requests (counted over all connections, 1-based) whose answers are lost. */
  readonly dropProduce?: (produceNumber: number) => boolean
}

interface Pending {
  apiKey: number
  apiVersion: number
  produceNumber: number
}

const PRODUCE = 0
const METADATA = 3
const FIND_COORDINATOR = 10

/** Splits a byte stream into size-prefixed frames. */
class Framer {
  private buf: Buffer = Buffer.alloc(0)
  push(data: Buffer, onFrame: (frame: Buffer) => void): void {
    this.buf = this.buf.length === 0 ? data : Buffer.concat([this.buf, data])
    while (this.buf.length >= 4) {
      const size = this.buf.readInt32BE(0)
      if (this.buf.length < 4 + size) return
      onFrame(this.buf.subarray(0, 4 + size))
      this.buf = this.buf.subarray(4 + size)
    }
  }
}

export class FaultProxy {
  readonly port: number
  /** Produce requests seen, and answers dropped. */
  produceRequests = 0
  droppedResponses = 0
  /** Request versions the clients sent, by api key. */
  readonly versions = new Map<number, Set<number>>()
  private readonly server: Server
  private readonly sockets = new Set<Socket>()
  private isCut = false

  private constructor(server: Server, port: number) {
    this.server = server
    this.port = port
  }

  static async start(brokerPort: number, options: FaultProxyOptions): Promise<FaultProxy> {
    const holder: { proxy?: FaultProxy } = {}
    const server = createServer((client) => holder.proxy!.accept(client, brokerPort, options))
    const port = await new Promise<number>((resolve) => {
      server.listen(0, '127.0.0.1', () => {
        const a = server.address()
        resolve(typeof a === 'object' && a !== null ? a.port : 0)
      })
    })
    holder.proxy = new FaultProxy(server, port)
    return holder.proxy
  }

  get bootstrap(): string {
    return `127.0.0.1:${this.port}`
  }

  /** Cuts every connection through the proxy, and every new one until heal(). */
  cut(): void {
    this.isCut = true
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  heal(): void {
    this.isCut = false
  }

  private accept(client: Socket, brokerPort: number, options: FaultProxyOptions): void {
    if (this.isCut) {
      client.destroy()
      return
    }
    const upstream = connect(brokerPort, '127.0.0.1')
    this.sockets.add(client)
    this.sockets.add(upstream)
    const pending = new Map<number, Pending>()
    const close = () => {
      client.destroy()
      upstream.destroy()
      this.sockets.delete(client)
      this.sockets.delete(upstream)
    }
    client.on('error', close)
    upstream.on('error', close)
    client.on('close', close)
    upstream.on('close', close)

    const fromClient = new Framer()
    client.on('data', (data: Buffer) => {
      fromClient.push(data, (frame) => {
        const apiKey = frame.readInt16BE(4)
        const apiVersion = frame.readInt16BE(6)
        const correlationId = frame.readInt32BE(8)
        let produceNumber = 0
        const seen = this.versions.get(apiKey) ?? new Set<number>()
        seen.add(apiVersion)
        this.versions.set(apiKey, seen)
        if (apiKey === PRODUCE) produceNumber = ++this.produceRequests
        pending.set(correlationId, { apiKey, apiVersion, produceNumber })
        upstream.write(frame)
      })
    })

    const fromBroker = new Framer()
    upstream.on('data', (data: Buffer) => {
      fromBroker.push(data, (frame) => {
        const correlationId = frame.readInt32BE(4)
        const req = pending.get(correlationId)
        pending.delete(correlationId)
        if (req?.apiKey === PRODUCE && options.dropProduce?.(req.produceNumber) === true) {
          // Written and answered by the broker; the client never hears of it.
          this.droppedResponses++
          close()
          return
        }
        if (req !== undefined && (req.apiKey === METADATA || req.apiKey === FIND_COORDINATOR)) {
          client.write(this.rewrite(frame, req))
          return
        }
        client.write(frame)
      })
    })
  }

  /** Points broker addresses in a Metadata or FindCoordinator response at the proxy. */
  private rewrite(frame: Buffer, req: Pending): Buffer {
    const spec = APIS.get(req.apiKey)
    if (spec === undefined) return frame
    const flexible = isFlexible(spec.response, req.apiVersion)
    const r = new Reader(frame.subarray(8))
    if (flexible) {
      const tags = r.readUVarint()
      for (let i = 0; i < tags; i++) {
        r.readUVarint()
        r.readRaw(r.readUVarint())
      }
    }
    const body = decode<Record<string, unknown>>(spec.response, req.apiVersion, r)
    const nodes: { host: string; port: number }[] = []
    if (Array.isArray(body.brokers)) nodes.push(...(body.brokers as { host: string; port: number }[]))
    if (Array.isArray(body.coordinators)) nodes.push(...(body.coordinators as { host: string; port: number }[]))
    if (typeof body.port === 'number' && body.port > 0) nodes.push(body as unknown as { host: string; port: number })
    for (const n of nodes) {
      n.host = '127.0.0.1'
      n.port = this.port
    }
    const w = new Writer()
    w.writeInt32(0).writeInt32(frame.readInt32BE(4))
    if (flexible) w.writeUVarint(0)
    encode(spec.response, req.apiVersion, body, w)
    const out = w.toBuffer()
    out.writeInt32BE(out.length - 4, 0)
    return out
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
