// A growable writer for responses. Large byte fields (record batches read from the log) are kept
// as separate chunks rather than copied, so a fetch response goes to the socket as a list of
// buffers.

const INITIAL_SIZE = 256

export class Writer {
  private chunks: Buffer[] = []
  private buf: Buffer
  private pos = 0
  private flushedLength = 0

  constructor(size = INITIAL_SIZE) {
    this.buf = Buffer.allocUnsafe(size)
  }

  get length(): number {
    return this.flushedLength + this.pos
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n))
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  writeInt8(v: number): this {
    this.ensure(1)
    this.buf.writeInt8(v, this.pos)
    this.pos += 1
    return this
  }

  writeBool(v: boolean): this {
    return this.writeInt8(v ? 1 : 0)
  }

  writeInt16(v: number): this {
    this.ensure(2)
    this.buf.writeInt16BE(v, this.pos)
    this.pos += 2
    return this
  }

  writeUInt16(v: number): this {
    this.ensure(2)
    this.buf.writeUInt16BE(v, this.pos)
    this.pos += 2
    return this
  }

  writeInt32(v: number): this {
    this.ensure(4)
    this.buf.writeInt32BE(v, this.pos)
    this.pos += 4
    return this
  }

  writeUInt32(v: number): this {
    this.ensure(4)
    this.buf.writeUInt32BE(v, this.pos)
    this.pos += 4
    return this
  }

  writeInt64(v: number | bigint): this {
    this.ensure(8)
    this.buf.writeBigInt64BE(BigInt(v), this.pos)
    this.pos += 8
    return this
  }

  writeFloat64(v: number): this {
    this.ensure(8)
    this.buf.writeDoubleBE(v, this.pos)
    this.pos += 8
    return this
  }

  writeUVarint(v: number): this {
    this.ensure(5)
    while (v >= 0x80) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80
      v = Math.floor(v / 128)
    }
    this.buf[this.pos++] = v
    return this
  }

  writeUuid(v: Buffer): this {
    this.ensure(16)
    v.copy(this.buf, this.pos, 0, 16)
    this.pos += 16
    return this
  }

  writeString(v: string | null): this {
    if (v === null) return this.writeInt16(-1)
    const n = Buffer.byteLength(v)
    this.writeInt16(n)
    this.ensure(n)
    this.pos += this.buf.write(v, this.pos, 'utf8')
    return this
  }

  writeCompactString(v: string | null): this {
    if (v === null) return this.writeUVarint(0)
    const n = Buffer.byteLength(v)
    this.writeUVarint(n + 1)
    this.ensure(n)
    this.pos += this.buf.write(v, this.pos, 'utf8')
    return this
  }

  writeBytes(v: Buffer | null): this {
    if (v === null) return this.writeInt32(-1)
    this.writeInt32(v.length)
    return this.writeRaw(v)
  }

  writeCompactBytes(v: Buffer | null): this {
    if (v === null) return this.writeUVarint(0)
    this.writeUVarint(v.length + 1)
    return this.writeRaw(v)
  }

  /** Small buffers are copied; large ones become their own chunk (no copy). */
  writeRaw(v: Buffer): this {
    if (v.length < 1024) {
      this.ensure(v.length)
      v.copy(this.buf, this.pos)
      this.pos += v.length
      return this
    }
    this.chunks.push(this.buf.subarray(0, this.pos))
    this.flushedLength += this.pos
    this.chunks.push(v)
    this.flushedLength += v.length
    this.buf = this.buf.subarray(this.pos)
    this.pos = 0
    return this
  }

  /** The written bytes as a list of buffers, in order. */
  toChunks(): Buffer[] {
    const out = this.chunks.slice()
    if (this.pos > 0) out.push(this.buf.subarray(0, this.pos))
    return out
  }

  toBuffer(): Buffer {
    const chunks = this.toChunks()
    return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.length)
  }
}
