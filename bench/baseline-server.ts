// The benchmark's baseline: the least a Node server must do to take the same bytes with the same
// durability as the broker, so the broker's figures can be read against the practical limit of
// Node on this machine.
//
//   node bench/baseline-server.ts --port 0 --data-dir <dir> [--fsync ack|none]
//   prints "baseline ready on 127.0.0.1:<port>"
//
// Produce (api key 0): the whole frame is appended to one file per topic with fs.writeSync. With
// --fsync ack (default, like cortado.fsync=ack) answers wait for group commit: every frame
// appended since the last round shares the next fdatasync round, at most one round runs at a time,
// and a frame is answered only after a round that started after its write completes. The answer
// is a well-formed Produce v7 response (one topic, one partition, error 0).
// Fetch (api key 1): reads the requested topic's file at fetchOffset (a byte position here) with
// fs.readSync, up to partitionMaxBytes, and answers with a Fetch v11-shaped response carrying
// those bytes as the records field (highWatermark = file size). No validation, no indexes, no
// decoding beyond the few header fields it needs: that is the point.
// Responses on a connection go back in request order.
import fs from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { FrameReader } from './frames.ts'
import { BASELINE_STATS_API_KEY } from './wire.ts'

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'data-dir': { type: 'string' },
    fsync: { type: 'string', default: 'ack' },
  },
})
const dataDir = values['data-dir']
if (dataDir === undefined) throw new Error('--data-dir is required')
const fsyncOnAck = values.fsync !== 'none'

interface TopicFile {
  fd: number
  size: number
  frames: number
}

const files = new Map<string, TopicFile>()
let produceRequests = 0

function topicFile(name: string): TopicFile {
  let f = files.get(name)
  if (f === undefined) {
    const safe = name.replace(/[^A-Za-z0-9._-]/g, '_')
    f = { fd: fs.openSync(join(dataDir!, `${safe}.log`), 'a+'), size: 0, frames: 0 }
    files.set(name, f)
  }
  return f
}

interface Slot {
  done: boolean
  /** Response frame as buffers written in order (a fetch's data is not copied). */
  response: Buffer[] | null
}

class Conn {
  readonly socket: Socket
  readonly reader = new FrameReader()
  readonly slots: Slot[] = []

  constructor(socket: Socket) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk)
      for (let frame = this.reader.next(); frame !== null; frame = this.reader.next()) this.handle(frame)
    })
    socket.on('error', () => socket.destroy())
  }

  private handle(frame: Buffer): void {
    const apiKey = frame.readInt16BE(4)
    const correlationId = frame.readInt32BE(8)
    const clientIdLength = frame.readInt16BE(12)
    const body = 14 + Math.max(0, clientIdLength)
    if (apiKey === 0) this.produce(frame, correlationId, body)
    else if (apiKey === 1) this.fetch(frame, correlationId, body)
    else if (apiKey === BASELINE_STATS_API_KEY) this.stats(correlationId)
    else this.socket.destroy()
  }

  private produce(frame: Buffer, correlationId: number, pos: number): void {
    // v7 body: transactionalId (nullable string), acks, timeoutMs, topics count, topic name
    const txLength = frame.readInt16BE(pos)
    pos += 2 + Math.max(0, txLength) + 2 + 4 + 4
    const nameLength = frame.readInt16BE(pos)
    const name = frame.toString('latin1', pos + 2, pos + 2 + nameLength)
    const file = topicFile(name)
    fs.writeSync(file.fd, frame, 0, frame.length, null)
    const baseOffset = file.frames
    file.size += frame.length
    file.frames++
    produceRequests++
    const slot: Slot = { done: false, response: [produceResponse(correlationId, name, baseOffset)] }
    this.slots.push(slot)
    if (fsyncOnAck) {
      groupCommit.add(file.fd, slot, this)
    } else {
      slot.done = true
      this.flush()
    }
  }

  private fetch(frame: Buffer, correlationId: number, pos: number): void {
    // v11 body: replicaId, maxWaitMs, minBytes, maxBytes, isolationLevel(1), sessionId, sessionEpoch, topics count
    pos += 4 + 4 + 4 + 4 + 1 + 4 + 4 + 4
    const nameLength = frame.readInt16BE(pos)
    const name = frame.toString('latin1', pos + 2, pos + 2 + nameLength)
    pos += 2 + nameLength + 4 // partitions count
    // partition, currentLeaderEpoch, fetchOffset, logStartOffset, partitionMaxBytes
    const fetchOffset = Number(frame.readBigInt64BE(pos + 8))
    const maxBytes = frame.readInt32BE(pos + 24)
    const file = topicFile(name)
    const n = Math.max(0, Math.min(maxBytes, file.size - fetchOffset))
    const data = Buffer.allocUnsafe(n)
    let got = 0
    while (got < n) got += fs.readSync(file.fd, data, got, n - got, fetchOffset + got)
    this.slots.push({ done: true, response: fetchResponse(correlationId, name, file.size, data) })
    this.flush()
  }

  /** Not Kafka: the benchmark's way to read the group-commit counters (JSON after the correlation id). */
  private stats(correlationId: number): void {
    const json = Buffer.from(
      JSON.stringify({ rounds: groupCommit.rounds, roundMs: groupCommit.totalMs, produceRequests }),
    )
    const b = Buffer.allocUnsafe(8)
    b.writeInt32BE(4 + json.length, 0)
    b.writeInt32BE(correlationId, 4)
    this.slots.push({ done: true, response: [b, json] })
    this.flush()
  }

  flush(): void {
    let corked = false
    while (this.slots.length > 0 && this.slots[0].done) {
      const slot = this.slots.shift()!
      if (slot.response === null) continue
      if (!corked) this.socket.cork()
      corked = true
      for (const b of slot.response) this.socket.write(b)
    }
    if (corked) this.socket.uncork()
  }
}

/** Group commit: one fdatasync round at a time, shared by everything written before it starts. */
class GroupCommit {
  private waiting: { slot: Slot; conn: Conn }[] = []
  private readonly dirty = new Set<number>()
  private running = false
  private scheduled = false
  rounds = 0
  totalMs = 0

  add(fd: number, slot: Slot, conn: Conn): void {
    this.dirty.add(fd)
    this.waiting.push({ slot, conn })
    this.schedule()
  }

  private schedule(): void {
    if (this.running || this.scheduled || this.waiting.length === 0) return
    this.scheduled = true
    setImmediate(this.round)
  }

  private readonly round = (): void => {
    this.scheduled = false
    const batch = this.waiting
    this.waiting = []
    const fds = [...this.dirty]
    this.dirty.clear()
    this.running = true
    let pending = fds.length
    const start = performance.now()
    const done = (): void => {
      this.running = false
      this.rounds++
      this.totalMs += performance.now() - start
      const conns = new Set<Conn>()
      for (const w of batch) {
        w.slot.done = true
        conns.add(w.conn)
      }
      for (const c of conns) c.flush()
      this.schedule()
    }
    if (pending === 0) {
      done()
      return
    }
    for (const fd of fds) {
      fs.fdatasync(fd, (err) => {
        if (err !== null) throw err
        if (--pending === 0) done()
      })
    }
  }
}

const groupCommit = new GroupCommit()

function produceResponse(correlationId: number, topic: string, baseOffset: number): Buffer {
  const name = Buffer.from(topic, 'latin1')
  const b = Buffer.alloc(4 + 4 + 4 + 2 + name.length + 4 + 4 + 2 + 8 + 8 + 8 + 4)
  let p = b.writeInt32BE(b.length - 4, 0)
  p = b.writeInt32BE(correlationId, p)
  p = b.writeInt32BE(1, p) // topics
  p = b.writeInt16BE(name.length, p)
  p += name.copy(b, p)
  p = b.writeInt32BE(1, p) // partitions
  p = b.writeInt32BE(0, p) // index
  p = b.writeInt16BE(0, p) // error code
  p = b.writeBigInt64BE(BigInt(baseOffset), p)
  p = b.writeBigInt64BE(-1n, p) // log append time
  p = b.writeBigInt64BE(0n, p) // log start offset
  b.writeInt32BE(0, p) // throttle time
  return b
}

function fetchResponse(correlationId: number, topic: string, highWatermark: number, data: Buffer): Buffer[] {
  const name = Buffer.from(topic, 'latin1')
  const headLength = 4 + 4 + 4 + 2 + 4 + 4 + 2 + name.length + 4 + 4 + 2 + 8 + 8 + 8 + 4 + 4 + 4
  const b = Buffer.allocUnsafe(headLength)
  let p = b.writeInt32BE(headLength + data.length - 4, 0)
  p = b.writeInt32BE(correlationId, p)
  p = b.writeInt32BE(0, p) // throttle time
  p = b.writeInt16BE(0, p) // error code
  p = b.writeInt32BE(0, p) // session id
  p = b.writeInt32BE(1, p) // topics
  p = b.writeInt16BE(name.length, p)
  p += name.copy(b, p)
  p = b.writeInt32BE(1, p) // partitions
  p = b.writeInt32BE(0, p) // partition index
  p = b.writeInt16BE(0, p) // error code
  p = b.writeBigInt64BE(BigInt(highWatermark), p)
  p = b.writeBigInt64BE(BigInt(highWatermark), p) // last stable offset
  p = b.writeBigInt64BE(0n, p) // log start offset
  p = b.writeInt32BE(-1, p) // aborted transactions: null
  p = b.writeInt32BE(-1, p) // preferred read replica
  b.writeInt32BE(data.length, p)
  return [b, data]
}

const server = createServer((socket) => new Conn(socket))
server.listen(Number(values.port), values.host, () => {
  const address = server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  process.stdout.write(`baseline ready on ${values.host}:${port} (fsync=${fsyncOnAck ? 'ack' : 'none'})\n`)
})
const stop = (): void => {
  process.stderr.write(`baseline: ${groupCommit.rounds} fdatasync rounds\n`)
  for (const f of files.values()) fs.closeSync(f.fd)
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
