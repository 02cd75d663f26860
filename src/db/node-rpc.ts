// The router's pipelined channel to a storage node: the node's internal HTTP API (node-http.ts),
// carried as length-prefixed frames over one long-lived connection instead of one HTTP exchange
// per call. The router opens it with an HTTP Upgrade (`Upgrade: cortado-rpc`) on the node's HTTP
// port, so the node keeps one port and one set of routes. Why: per write or read, HTTP/1.1 costs
// a request write for the headers and another for the body, a response write, and header parsing
// on both sides; here every call of one event-loop turn goes out in one write, and every answer
// ready in one turn comes back in one (docs/database.md, "Performance").
//
//   Request  => length u32 (of what follows) | id u32 | method u8 (0 GET, 1 POST)
//               | pathLength u16 | path (UTF-8, with its query) | body (UTF-8 JSON, may be empty)
//   Response => length u32 | id u32 | status u16 | headersLength u16
//               | headers (UTF-8 JSON object, may be empty) | body (UTF-8)
//
// Answers may come in any order; the id pairs them with their calls.

export const RPC_UPGRADE = 'cortado-rpc'

/** Largest frame either side accepts: the node's largest request body plus room for the rest. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024 + 64 * 1024

export type RpcMethod = 'GET' | 'POST'

export interface RpcRequest {
  id: number
  method: RpcMethod
  path: string
  body: Buffer
}

export interface RpcResponse {
  id: number
  status: number
  headers: Record<string, string>
  body: Buffer
}

export class RpcFrameError extends Error {
  override readonly name = 'RpcFrameError'
}

export function encodeRequest(id: number, method: RpcMethod, path: string, body: string | undefined): Buffer {
  const pathBytes = Buffer.byteLength(path)
  const bodyBytes = body === undefined ? 0 : Buffer.byteLength(body)
  if (pathBytes > 0xffff) throw new RpcFrameError(`path of ${pathBytes} bytes is too long for a frame`)
  const out = Buffer.allocUnsafe(4 + 4 + 1 + 2 + pathBytes + bodyBytes)
  out.writeUInt32BE(out.length - 4, 0)
  out.writeUInt32BE(id, 4)
  out[8] = method === 'GET' ? 0 : 1
  out.writeUInt16BE(pathBytes, 9)
  out.write(path, 11, 'utf8')
  if (body !== undefined) out.write(body, 11 + pathBytes, 'utf8')
  return out
}

export function decodeRequest(frame: Buffer): RpcRequest {
  if (frame.length < 7) throw new RpcFrameError('request frame shorter than its header')
  const method = frame[4]
  if (method > 1) throw new RpcFrameError(`unknown method ${method}`)
  const pathBytes = frame.readUInt16BE(5)
  if (7 + pathBytes > frame.length) throw new RpcFrameError('request path runs past the frame')
  return {
    id: frame.readUInt32BE(0),
    method: method === 0 ? 'GET' : 'POST',
    path: frame.toString('utf8', 7, 7 + pathBytes),
    body: frame.subarray(7 + pathBytes),
  }
}

export function encodeResponse(
  id: number,
  status: number,
  headers: Record<string, string> | null,
  body: string,
): Buffer {
  const headerText = headers === null ? '' : JSON.stringify(headers)
  const headerBytes = Buffer.byteLength(headerText)
  if (headerBytes > 0xffff) throw new RpcFrameError(`headers of ${headerBytes} bytes are too long for a frame`)
  const out = Buffer.allocUnsafe(4 + 4 + 2 + 2 + headerBytes + Buffer.byteLength(body))
  out.writeUInt32BE(out.length - 4, 0)
  out.writeUInt32BE(id, 4)
  out.writeUInt16BE(status, 8)
  out.writeUInt16BE(headerBytes, 10)
  out.write(headerText, 12, 'utf8')
  out.write(body, 12 + headerBytes, 'utf8')
  return out
}

export function decodeResponse(frame: Buffer): RpcResponse {
  if (frame.length < 8) throw new RpcFrameError('response frame shorter than its header')
  const headerBytes = frame.readUInt16BE(6)
  if (8 + headerBytes > frame.length) throw new RpcFrameError('response headers run past the frame')
  let headers: Record<string, string> = {}
  if (headerBytes > 0) {
    const parsed: unknown = JSON.parse(frame.toString('utf8', 8, 8 + headerBytes))
    if (typeof parsed !== 'object' || parsed === null) throw new RpcFrameError('response headers are not an object')
    headers = parsed as Record<string, string>
  }
  return { id: frame.readUInt32BE(0), status: frame.readUInt16BE(4), headers, body: frame.subarray(8 + headerBytes) }
}

/**
 * Cuts a byte stream into frames (the bytes after each length prefix). Chunks are kept as they
 * come and joined once per frame, so a large frame arriving in many chunks is copied once.
 */
export class FrameReader {
  readonly #chunks: Buffer[] = []
  #bytes = 0
  /** Length of the frame being gathered, once its prefix is in (-1: not yet). */
  #need = -1

  /** Adds a chunk; returns the frames it completes, in order. Throws RpcFrameError on an oversized frame. */
  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk)
    this.#bytes += chunk.length
    const frames: Buffer[] = []
    for (;;) {
      if (this.#need < 0) {
        if (this.#bytes < 4) break
        const head = this.#chunks[0].length >= 4 ? this.#chunks[0] : this.#join(4)
        this.#need = head.readUInt32BE(0)
        if (this.#need > MAX_FRAME_BYTES)
          throw new RpcFrameError(`frame of ${this.#need} bytes exceeds the limit of ${MAX_FRAME_BYTES}`)
      }
      if (this.#bytes < 4 + this.#need) break
      const all = this.#join(4 + this.#need)
      frames.push(all.subarray(4, 4 + this.#need))
      this.#take(4 + this.#need)
      this.#need = -1
    }
    return frames
  }

  /** The first `n` buffered bytes as one buffer (joining chunks only when they span several). */
  #join(n: number): Buffer {
    if (this.#chunks[0].length >= n) return this.#chunks[0]
    const joined = Buffer.concat(this.#chunks)
    this.#chunks.length = 0
    this.#chunks.push(joined)
    return joined
  }

  #take(n: number): void {
    while (n > 0) {
      const first = this.#chunks[0]
      if (first.length <= n) {
        this.#chunks.shift()
        this.#bytes -= first.length
        n -= first.length
      } else {
        this.#chunks[0] = first.subarray(n)
        this.#bytes -= n
        n = 0
      }
    }
  }
}

/**
 * Gathers frames and writes them in one go, at the point `flushAt` names.
 * 'turn' (the router's calls): at the end of the event-loop turn (setImmediate runs after the I/O
 * callbacks of the turn), so the requests of many HTTP connections read in one turn share a write.
 * 'microtasks' (the node's answers): once the promise jobs running now are done, so the answers
 * released together (one fetch applied, one frame of reads) share a write, and none waits for
 * the rest of the turn, say the node's next fetch being built and sent (~0.1 ms at one writer,
 * docs/database.md "Performance").
 */
export class CoalescingWriter {
  readonly #write: (data: Buffer) => void
  readonly #schedule: (flush: () => void) => void
  #queued: Buffer[] = []
  #scheduled = false

  constructor(write: (data: Buffer) => void, flushAt: 'turn' | 'microtasks' = 'turn') {
    this.#write = write
    this.#schedule = flushAt === 'turn' ? (flush) => setImmediate(flush) : queueMicrotask
  }

  get queued(): number {
    return this.#queued.length
  }

  push(frame: Buffer): void {
    this.#queued.push(frame)
    if (this.#scheduled) return
    this.#scheduled = true
    this.#schedule(() => this.flush())
  }

  flush(): void {
    this.#scheduled = false
    if (this.#queued.length === 0) return
    const frames = this.#queued
    this.#queued = []
    this.#write(frames.length === 1 ? frames[0] : Buffer.concat(frames))
  }

  /** Drops what is queued (the connection is gone); returns how many frames were dropped. */
  discard(): number {
    const n = this.#queued.length
    this.#queued = []
    return n
  }
}
