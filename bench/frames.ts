// Splits a TCP byte stream into Kafka's size-prefixed frames. Frames that sit inside one received
// chunk are returned as views (no copy); only a frame spanning chunks is concatenated.

export class FrameReader {
  private chunks: Buffer[] = []
  private bytes = 0

  push(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.bytes += chunk.length
  }

  /** The next whole frame, size prefix included, or null until more bytes arrive. */
  next(): Buffer | null {
    if (this.bytes < 4) return null
    let first = this.chunks[0]
    if (first.length < 4) first = this.merge(4)
    const total = first.readInt32BE(0) + 4
    if (total < 4) throw new Error(`negative frame size ${total - 4}`)
    if (this.bytes < total) return null
    if (first.length < total) first = this.merge(total)
    const frame = first.subarray(0, total)
    if (first.length === total) this.chunks.shift()
    else this.chunks[0] = first.subarray(total)
    this.bytes -= total
    return frame
  }

  /** Joins leading chunks until the first holds at least n bytes (n <= this.bytes). */
  private merge(n: number): Buffer {
    let have = 0
    let count = 0
    while (have < n) have += this.chunks[count++].length
    const joined = Buffer.concat(this.chunks.slice(0, count), have)
    this.chunks.splice(0, count, joined)
    return joined
  }
}
