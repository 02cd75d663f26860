// Producer id allocation for InitProducerId. Ids are handed out in increasing order and never
// reused, across restarts and crashes too: like Kafka's block allocation (ProducerIdManager,
// blocks of 1000), the broker durably records the end of the block it is handing out before
// giving out its first id, so a restart continues at the next block and skips the rest of the
// old one.
//
// File: <data dir>/producer-id-block, one line `next.block.start=<n>`, replaced atomically and
// durably (src/util/durable-file.ts).
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileDurably } from '../util/durable-file.ts'

export const PRODUCER_ID_FILE = 'producer-id-block'
export const PRODUCER_ID_BLOCK_SIZE = 1000

export class ProducerIdAllocator {
  readonly path: string
  private readonly blockSize: number
  private next = -1
  /** End (exclusive) of the block made durable; ids below it may have been handed out. */
  private blockEnd = -1
  private closed = false

  constructor(dataDir: string, blockSize = PRODUCER_ID_BLOCK_SIZE) {
    this.path = join(dataDir, PRODUCER_ID_FILE)
    this.blockSize = blockSize
  }

  /** The next producer id. Throws if the block file cannot be read or written, or once closed. */
  allocate(): number {
    if (this.closed) throw new Error('producer id allocator is closed')
    if (this.next < 0) {
      this.next = this.readBlockStart()
      this.blockEnd = this.next
    }
    if (this.next >= this.blockEnd) {
      const end = this.next + this.blockSize
      this.writeBlockStart(end)
      this.blockEnd = end
    }
    return this.next++
  }

  /** No more ids: the data directory is about to be released to whoever locks it next. */
  close(): void {
    this.closed = true
  }

  private readBlockStart(): number {
    if (!existsSync(this.path)) return 0
    const m = /^next\.block\.start=(\d+)$/m.exec(readFileSync(this.path, 'utf8'))
    const n = m === null ? NaN : Number(m[1])
    if (!Number.isSafeInteger(n)) throw new Error(`${this.path} is corrupt: refusing to risk reusing producer ids`)
    return n
  }

  private writeBlockStart(n: number): void {
    writeFileDurably(
      this.path,
      `# written by cortado broker: producer ids below this may have been handed out\nnext.block.start=${n}\n`,
      0o644,
    )
  }
}
