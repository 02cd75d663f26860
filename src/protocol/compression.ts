// Record batch compression codecs (attributes bits 0-2): gzip, snappy, lz4, zstd.
//
// - gzip and zstd come from node:zlib (zstd is in Node 24's zlib).
// - snappy and lz4 use @platformatic/wasm-utils (Rust compiled to WebAssembly, no native build),
//   the codec library @platformatic/kafka itself uses.
// - snappy is read in both forms found in Kafka: raw snappy (librdkafka writes it) and the xerial
//   snappy-java stream framing (the Java client and kafka-python write it: magic 0x82 "SNAPPY" 0,
//   two int32 versions, then int32-length-prefixed raw snappy chunks). It is written framed, as
//   the Java client's SnappyOutputStream does (32 KiB chunks).
// - lz4 is the standard LZ4 frame format, which is what Kafka's Lz4BlockOutputStream writes for
//   magic >= 1 (independent blocks, 64 KiB blocks, no checksums). Frames with linked blocks,
//   block or content checksums and a content size (python-lz4, librdkafka) are read too.
//
// Every decoder is bounded: output larger than maxBytes is refused before it is produced (snappy
// and lz4 from their headers, zlib through maxOutputLength), and malformed input yields a
// CompressionError, never a crash.

import zlib from 'node:zlib'
import { ErrorCode } from './errors.ts'
import { lz4Compress, lz4Decompress, snappyCompress, snappyDecompress } from '@platformatic/wasm-utils'

export const CODEC_NONE = 0
export const CODEC_GZIP = 1
export const CODEC_SNAPPY = 2
export const CODEC_LZ4 = 3
export const CODEC_ZSTD = 4

export const CODEC_NAMES: readonly string[] = ['none', 'gzip', 'snappy', 'lz4', 'zstd']

/** Default cap on the decompressed size of one batch's records. */
export const MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024

export class CompressionError extends Error {
  /** The Kafka error code a handler should answer with. */
  readonly code: number
  constructor(code: number, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'CompressionError'
    this.code = code
  }
}

function corrupt(codec: number, message: string, cause?: unknown): CompressionError {
  return new CompressionError(
    ErrorCode.CORRUPT_MESSAGE,
    `${CODEC_NAMES[codec] ?? `codec ${codec}`}: ${message}`,
    cause === undefined ? undefined : { cause },
  )
}

function tooLarge(codec: number, size: number, maxBytes: number): CompressionError {
  return corrupt(codec, `decompressed size ${size} exceeds the limit of ${maxBytes} bytes`)
}

function unsupported(codec: number): CompressionError {
  return new CompressionError(ErrorCode.UNSUPPORTED_COMPRESSION_TYPE, `unknown compression codec ${codec}`)
}

// ---- snappy ----

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const XERIAL_HEADER_SIZE = 16
const XERIAL_CHUNK = 32 * 1024

/** The uncompressed length a raw snappy block declares (its leading varint), or -1 if malformed. */
function snappyDeclaredLength(buf: Buffer, start: number, end: number): number {
  let value = 0
  let mul = 1
  for (let i = 0; i < 5 && start + i < end; i++) {
    const b = buf[start + i]
    value += (b & 0x7f) * mul
    if (b < 0x80) return value
    mul *= 128
  }
  return -1
}

function snappyRaw(block: Buffer, maxBytes: number): Buffer {
  const declared = snappyDeclaredLength(block, 0, block.length)
  if (declared < 0) throw corrupt(CODEC_SNAPPY, 'bad block length')
  if (declared > maxBytes) throw tooLarge(CODEC_SNAPPY, declared, maxBytes)
  let out: Buffer
  try {
    out = snappyDecompress(block)
  } catch (err) {
    throw corrupt(CODEC_SNAPPY, 'malformed block', err)
  }
  if (out.length !== declared) throw corrupt(CODEC_SNAPPY, `block decoded to ${out.length} bytes, declared ${declared}`)
  return out
}

export function isXerialSnappy(data: Buffer): boolean {
  return data.length >= XERIAL_HEADER_SIZE && data.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)
}

function snappyDecode(data: Buffer, maxBytes: number): Buffer {
  if (!isXerialSnappy(data)) return snappyRaw(data, maxBytes)
  // First pass: chunk boundaries and declared sizes, so nothing is decoded beyond the limit.
  const chunks: Buffer[] = []
  let total = 0
  let pos = XERIAL_HEADER_SIZE
  while (pos < data.length) {
    if (data.length - pos < 4) throw corrupt(CODEC_SNAPPY, 'truncated xerial chunk length')
    const len = data.readUInt32BE(pos)
    pos += 4
    if (len > data.length - pos) throw corrupt(CODEC_SNAPPY, 'xerial chunk overruns the data')
    const chunk = data.subarray(pos, pos + len)
    const declared = snappyDeclaredLength(chunk, 0, chunk.length)
    if (declared < 0) throw corrupt(CODEC_SNAPPY, 'bad xerial chunk')
    total += declared
    if (total > maxBytes) throw tooLarge(CODEC_SNAPPY, total, maxBytes)
    chunks.push(chunk)
    pos += len
  }
  return Buffer.concat(chunks.map((c) => snappyRaw(c, maxBytes)))
}

/** Xerial-framed snappy, as Kafka's Java client writes it. */
function snappyEncode(data: Buffer): Buffer {
  const header = Buffer.alloc(XERIAL_HEADER_SIZE)
  XERIAL_MAGIC.copy(header, 0)
  header.writeInt32BE(1, 8) // version
  header.writeInt32BE(1, 12) // minimum compatible version
  const parts: Buffer[] = [header]
  for (let pos = 0; pos < data.length; pos += XERIAL_CHUNK) {
    const block = snappyCompress(data.subarray(pos, Math.min(pos + XERIAL_CHUNK, data.length)))
    const len = Buffer.allocUnsafe(4)
    len.writeUInt32BE(block.length, 0)
    parts.push(len, block)
  }
  return Buffer.concat(parts)
}

// ---- lz4 frame ----

const LZ4_MAGIC = 0x184d2204
const LZ4_BLOCK_MAX = [0, 0, 0, 0, 64 * 1024, 256 * 1024, 1024 * 1024, 4 * 1024 * 1024]

/**
 * Walks an LZ4 frame's header and blocks without decoding them and returns an upper bound of the
 * decoded size (each compressed block decodes to at most the frame's block maximum; encoders fill
 * every block but the last, so the bound is tight). Throws on a malformed frame.
 */
function lz4Bound(data: Buffer): number {
  if (data.length < 7 || data.readUInt32LE(0) !== LZ4_MAGIC) throw corrupt(CODEC_LZ4, 'not an LZ4 frame')
  const flg = data[4]
  const bd = data[5]
  if (flg >> 6 !== 1) throw corrupt(CODEC_LZ4, `unsupported frame version ${flg >> 6}`)
  const blockChecksum = (flg & 0x10) !== 0
  const hasContentSize = (flg & 0x08) !== 0
  const contentChecksum = (flg & 0x04) !== 0
  const hasDictId = (flg & 0x01) !== 0
  const blockMax = LZ4_BLOCK_MAX[(bd >> 4) & 0x07]
  if (blockMax === 0) throw corrupt(CODEC_LZ4, `bad block size id ${(bd >> 4) & 0x07}`)
  let pos = 6
  let contentSize = -1
  if (hasContentSize) {
    if (data.length < pos + 8) throw corrupt(CODEC_LZ4, 'truncated frame header')
    contentSize = data.readUInt32LE(pos) + data.readUInt32LE(pos + 4) * 2 ** 32
    pos += 8
  }
  if (hasDictId) pos += 4
  pos += 1 // header checksum
  let bound = 0
  for (;;) {
    if (data.length - pos < 4) throw corrupt(CODEC_LZ4, 'truncated block')
    const word = data.readUInt32LE(pos)
    pos += 4
    if (word === 0) break // end mark
    const size = word & 0x7fffffff
    const uncompressed = (word & 0x80000000) !== 0
    if (size > blockMax || size > data.length - pos) throw corrupt(CODEC_LZ4, `bad block size ${size}`)
    bound += uncompressed ? size : blockMax
    pos += size + (blockChecksum ? 4 : 0)
  }
  if (contentChecksum) pos += 4
  if (pos > data.length) throw corrupt(CODEC_LZ4, 'truncated frame')
  return contentSize >= 0 ? Math.min(contentSize, bound) : bound
}

function lz4Decode(data: Buffer, maxBytes: number): Buffer {
  const bound = lz4Bound(data)
  if (bound > maxBytes) throw tooLarge(CODEC_LZ4, bound, maxBytes)
  let out: Buffer
  try {
    out = lz4Decompress(data)
  } catch (err) {
    throw corrupt(CODEC_LZ4, 'malformed frame', err)
  }
  if (out.length > maxBytes) throw tooLarge(CODEC_LZ4, out.length, maxBytes)
  return out
}

// ---- zlib codecs ----

function zlibError(codec: number, err: unknown, maxBytes: number): CompressionError {
  if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
    return corrupt(codec, `decompressed size exceeds the limit of ${maxBytes} bytes`, err)
  return corrupt(codec, (err as Error).message, err)
}

// ---- public API ----

/** Decompresses a batch's records section. Throws CompressionError. */
export function decompress(codec: number, data: Buffer, maxBytes = MAX_DECOMPRESSED_BYTES): Buffer {
  switch (codec) {
    case CODEC_NONE:
      if (data.length > maxBytes) throw tooLarge(codec, data.length, maxBytes)
      return data
    case CODEC_GZIP:
      try {
        return zlib.gunzipSync(data, { maxOutputLength: maxBytes })
      } catch (err) {
        throw zlibError(codec, err, maxBytes)
      }
    case CODEC_SNAPPY:
      return snappyDecode(data, maxBytes)
    case CODEC_LZ4:
      return lz4Decode(data, maxBytes)
    case CODEC_ZSTD:
      try {
        return zlib.zstdDecompressSync(data, { maxOutputLength: maxBytes })
      } catch (err) {
        throw zlibError(codec, err, maxBytes)
      }
    default:
      throw unsupported(codec)
  }
}

/**
 * Like decompress, but gzip and zstd run on libuv's thread pool so a large batch does not hold
 * up the event loop (snappy and lz4 are fast enough to run inline).
 */
export function decompressAsync(codec: number, data: Buffer, maxBytes = MAX_DECOMPRESSED_BYTES): Promise<Buffer> {
  // A throw in the executor rejects the promise.
  if (codec !== CODEC_GZIP && codec !== CODEC_ZSTD)
    return new Promise((resolve) => resolve(decompress(codec, data, maxBytes)))
  const { promise, resolve, reject } = Promise.withResolvers<Buffer>()
  const done = (err: Error | null, out: Buffer): void => {
    if (err !== null) reject(zlibError(codec, err, maxBytes))
    else resolve(out)
  }
  if (codec === CODEC_GZIP) zlib.gunzip(data, { maxOutputLength: maxBytes }, done)
  else zlib.zstdDecompress(data, { maxOutputLength: maxBytes }, done)
  return promise
}

/** Compresses a records section with a codec, in the form Kafka's Java client writes it. */
export function compress(codec: number, data: Buffer): Buffer {
  switch (codec) {
    case CODEC_NONE:
      return data
    case CODEC_GZIP:
      return zlib.gzipSync(data)
    case CODEC_SNAPPY:
      return snappyEncode(data)
    case CODEC_LZ4:
      return lz4Compress(data)
    case CODEC_ZSTD:
      return zlib.zstdCompressSync(data)
    default:
      throw unsupported(codec)
  }
}

/** Like compress, with gzip and zstd on the thread pool. */
export function compressAsync(codec: number, data: Buffer): Promise<Buffer> {
  if (codec !== CODEC_GZIP && codec !== CODEC_ZSTD) return new Promise((resolve) => resolve(compress(codec, data)))
  const { promise, resolve, reject } = Promise.withResolvers<Buffer>()
  const done = (err: Error | null, out: Buffer): void => {
    if (err !== null) reject(corrupt(codec, err.message, err))
    else resolve(out)
  }
  if (codec === CODEC_GZIP) zlib.gzip(data, done)
  else zlib.zstdCompress(data, done)
  return promise
}
