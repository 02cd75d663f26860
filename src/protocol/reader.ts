// A bounds-checked reader over one Kafka frame. Every read checks the remaining length first and
// throws ProtocolError, so a hostile length can neither crash the broker nor make it allocate
// more than the frame it already holds.
import { ProtocolError } from './errors.ts'

export class Reader {
  readonly buf: Buffer
  pos: number
  readonly end: number

  constructor(buf: Buffer, pos = 0, end = buf.length) {
    this.buf = buf
    this.pos = pos
    this.end = end
  }

  get remaining(): number {
    return this.end - this.pos
  }

  private need(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new ProtocolError('TRUNCATED', `need ${n} bytes at ${this.pos}, have ${this.end - this.pos}`)
    }
  }

  readInt8(): number {
    this.need(1)
    return this.buf.readInt8(this.pos++)
  }

  readBool(): boolean {
    return this.readInt8() !== 0
  }

  readInt16(): number {
    this.need(2)
    const v = this.buf.readInt16BE(this.pos)
    this.pos += 2
    return v
  }

  readUInt16(): number {
    this.need(2)
    const v = this.buf.readUInt16BE(this.pos)
    this.pos += 2
    return v
  }

  readInt32(): number {
    this.need(4)
    const v = this.buf.readInt32BE(this.pos)
    this.pos += 4
    return v
  }

  readUInt32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  /** int64 as a JS number: offsets and timestamps fit; larger values lose precision, never crash. */
  readInt64(): number {
    this.need(8)
    const v = Number(this.buf.readBigInt64BE(this.pos))
    this.pos += 8
    return v
  }

  readFloat64(): number {
    this.need(8)
    const v = this.buf.readDoubleBE(this.pos)
    this.pos += 8
    return v
  }

  /** Unsigned LEB128 varint, at most 5 bytes (32 bits), as used by compact lengths and tags. */
  readUVarint(): number {
    let result = 0
    let shift = 0
    for (let i = 0; i < 5; i++) {
      this.need(1)
      const b = this.buf[this.pos++]
      result += (b & 0x7f) * 2 ** shift
      if ((b & 0x80) === 0) return result
      shift += 7
    }
    throw new ProtocolError('BAD_VARINT', 'unsigned varint longer than 5 bytes')
  }

  readUuid(): Buffer {
    this.need(16)
    const v = this.buf.subarray(this.pos, this.pos + 16)
    this.pos += 16
    return v
  }

  private checkLength(n: number): void {
    if (n > this.remaining)
      throw new ProtocolError('BAD_LENGTH', `length ${n} exceeds the ${this.remaining} bytes left`)
  }

  /** int16-length string; -1 is null. */
  readString(): string | null {
    const n = this.readInt16()
    if (n < 0) {
      if (n === -1) return null
      throw new ProtocolError('BAD_LENGTH', `string length ${n}`)
    }
    return this.readUtf8(n)
  }

  /** uvarint (length+1) string; 0 is null. */
  readCompactString(): string | null {
    const n = this.readUVarint() - 1
    if (n < 0) return null
    return this.readUtf8(n)
  }

  private readUtf8(n: number): string {
    this.checkLength(n)
    const s = this.buf.toString('utf8', this.pos, this.pos + n)
    this.pos += n
    return s
  }

  /** int32-length bytes, returned as a view of the frame (no copy); -1 is null. */
  readBytes(): Buffer | null {
    const n = this.readInt32()
    if (n < 0) {
      if (n === -1) return null
      throw new ProtocolError('BAD_LENGTH', `bytes length ${n}`)
    }
    return this.readRaw(n)
  }

  readCompactBytes(): Buffer | null {
    const n = this.readUVarint() - 1
    if (n < 0) return null
    return this.readRaw(n)
  }

  readRaw(n: number): Buffer {
    this.checkLength(n)
    const v = this.buf.subarray(this.pos, this.pos + n)
    this.pos += n
    return v
  }

  /** Array count (int32, -1 null). Each element takes at least one byte, so the count is bounded by what is left. */
  readArrayLength(): number {
    const n = this.readInt32()
    if (n < -1) throw new ProtocolError('BAD_LENGTH', `array length ${n}`)
    if (n > this.remaining)
      throw new ProtocolError('BAD_LENGTH', `array length ${n} exceeds the ${this.remaining} bytes left`)
    return n
  }

  readCompactArrayLength(): number {
    const n = this.readUVarint() - 1
    if (n > this.remaining)
      throw new ProtocolError('BAD_LENGTH', `array length ${n} exceeds the ${this.remaining} bytes left`)
    return n
  }
}
