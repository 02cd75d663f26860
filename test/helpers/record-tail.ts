// Reads the value out of a record's tail as scanRecords (src/protocol/record-batch.ts) returns it:
// key length, key, value length, value, headers (zig-zag varints).
export function recordTailValue(tail: Buffer): string | null {
  let pos = 0
  const varint = (): number => {
    let raw = 0
    let mul = 1
    for (;;) {
      const b = tail[pos++]
      raw += (b & 0x7f) * mul
      if (b < 0x80) break
      mul *= 128
    }
    return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2
  }
  const keyLength = varint()
  pos += Math.max(keyLength, 0)
  const valueLength = varint()
  return valueLength < 0 ? null : tail.subarray(pos, pos + valueLength).toString()
}
