// Record batch codecs (src/protocol/compression.ts): round trips, the framings real clients use,
// bounds against decompression bombs, malformed input, and batches produced by kcat
// (librdkafka) and kafka-python with every codec, read back from the broker's log.
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { lz4Compress, snappyCompress } from '@platformatic/wasm-utils'
import {
  CODEC_GZIP,
  CODEC_LZ4,
  CODEC_NONE,
  CODEC_SNAPPY,
  CODEC_ZSTD,
  CompressionError,
  compress,
  compressAsync,
  decompress,
  decompressAsync,
  isXerialSnappy,
} from '../../src/protocol/compression.ts'
import { batchRecords } from '../../src/protocol/batch-records.ts'
import { type FetchResponse } from '../../src/protocol/messages/fetch-response.ts'
import { ATTR_COMPRESSION_MASK, encodeRecordBatch, readBatchHeader } from '../../src/protocol/record-batch.ts'
import { mulberry32 } from '../../src/util/random.ts'
import { type BrokerProcess, removeDir, ROOT, startBroker } from '../helpers/broker-process.ts'
import { expectSuccess, PYTHON, run, runPythonJson, uniqueTopic } from '../helpers/compat.ts'
import { parseResponse, RawClient, requestFrame } from '../helpers/raw-client.ts'
import { recordTailValue } from '../helpers/record-tail.ts'

const CODECS = { gzip: CODEC_GZIP, snappy: CODEC_SNAPPY, lz4: CODEC_LZ4, zstd: CODEC_ZSTD } as const
type CodecName = keyof typeof CODECS
const NAMES = Object.keys(CODECS) as CodecName[]

function samples(): Buffer[] {
  const text = Buffer.from('the quick brown fox jumps over the lazy dog; '.repeat(30_000)) // ~1.3 MB, compressible
  return [
    Buffer.alloc(0),
    Buffer.from('x'),
    randomBytes(1000),
    randomBytes(300_000),
    text,
    Buffer.concat([randomBytes(70_000), text.subarray(0, 200_000)]),
  ]
}

void test('every codec round-trips, sync and async', async () => {
  for (const name of NAMES) {
    const codec = CODECS[name]
    for (const data of samples()) {
      const packed = compress(codec, data)
      assert.deepEqual(decompress(codec, packed), data, `${name} ${data.length} bytes`)
      assert.deepEqual(
        await decompressAsync(codec, await compressAsync(codec, data)),
        data,
        `${name} async ${data.length} bytes`,
      )
    }
  }
  const data = randomBytes(100)
  assert.equal(compress(CODEC_NONE, data), data)
  assert.equal(decompress(CODEC_NONE, data), data)
})

void test('snappy is written in the xerial framing and read raw or framed', () => {
  const text = Buffer.from('abcdefgh'.repeat(20_000)) // 160 KB: several 32 KB xerial chunks
  const framed = compress(CODEC_SNAPPY, text)
  assert.ok(isXerialSnappy(framed))
  assert.deepEqual(framed.subarray(0, 16), Buffer.from('82534e41505059000000000100000001', 'hex'))
  assert.deepEqual(decompress(CODEC_SNAPPY, framed), text)
  // Raw snappy (librdkafka's form).
  assert.deepEqual(decompress(CODEC_SNAPPY, snappyCompress(text)), text)
  // kafka-python's xerial encoder (python-snappy), when available.
  const py = spawnSync(PYTHON, [
    '-c',
    'import sys, kafka.codec as c; sys.stdout.buffer.write(c.snappy_encode(b"abcdefgh" * 20000, xerial_compatible=True))',
  ])
  if (py.status === 0) {
    assert.ok(isXerialSnappy(py.stdout))
    assert.deepEqual(decompress(CODEC_SNAPPY, py.stdout), text)
  }
})

void test("lz4 frames: what we write is what Kafka's Java client reads; every frame option is read", () => {
  const text = Buffer.from('0123456789abcdef'.repeat(40_000)) // 640 KB: several blocks
  const frame = compress(CODEC_LZ4, text)
  assert.equal(frame.readUInt32LE(0), 0x184d2204)
  const flg = frame[4]
  assert.equal(flg >> 6, 1, 'version 01')
  assert.ok((flg & 0x20) !== 0, "independent blocks (Kafka's Lz4BlockInputStream decodes block by block)")
  assert.ok([4, 5, 6, 7].includes((frame[5] >> 4) & 7), 'block size 64 KB..4 MB')
  assert.deepEqual(decompress(CODEC_LZ4, frame), text)
  // python-lz4 frames with linked blocks, checksums and a content size (kafka-python uses linked blocks).
  const options = [
    'block_linked=True',
    'block_linked=True, content_checksum=True, block_checksum=True, store_size=True',
    'block_linked=False, store_size=False',
    'block_size=lz4.frame.BLOCKSIZE_MAX4MB',
  ]
  for (const opts of options) {
    const py = spawnSync(
      PYTHON,
      [
        '-c',
        `import sys, lz4.frame; sys.stdout.buffer.write(lz4.frame.compress(b"0123456789abcdef" * 40000, ${opts}))`,
      ],
      { maxBuffer: 64 << 20 },
    )
    if (py.status !== 0) continue // python-lz4 missing
    assert.deepEqual(decompress(CODEC_LZ4, py.stdout), text, opts)
  }
})

void test('decompression is bounded: bombs are refused before they are expanded', async () => {
  const zeros = Buffer.alloc(8 << 20)
  const limit = 1 << 20
  for (const name of NAMES) {
    const codec = CODECS[name]
    const packed = compress(codec, zeros)
    assert.ok(packed.length < limit, `${name} compresses zeros`)
    assert.throws(
      () => decompress(codec, packed, limit),
      (e: unknown) => e instanceof CompressionError && e.code === 2 && /limit/.test(e.message),
      name,
    )
    await assert.rejects(decompressAsync(codec, packed, limit), CompressionError, name)
    assert.equal(decompress(codec, packed, zeros.length).length, zeros.length, `${name} at exactly the limit`)
  }
  // Raw snappy and a bare lz4 frame are checked from their headers too.
  assert.throws(() => decompress(CODEC_SNAPPY, snappyCompress(zeros), limit), /limit/)
  assert.throws(() => decompress(CODEC_LZ4, lz4Compress(zeros), limit), /limit/)
  // A raw snappy block claiming 4 GB.
  assert.throws(() => decompress(CODEC_SNAPPY, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x00])), /limit/)
})

void test('malformed input yields CompressionError, never a crash, and the codecs keep working', () => {
  const random = mulberry32(99)
  const rand = (n: number): number => Math.floor(random() * n)
  for (const name of NAMES) {
    const codec = CODECS[name]
    const good = compress(codec, Buffer.from('hello compression '.repeat(500)))
    const inputs = [
      Buffer.alloc(0),
      randomBytes(1),
      randomBytes(64),
      good.subarray(0, good.length >> 1),
      good.subarray(0, 10),
    ]
    for (let i = 0; i < 40; i++) {
      const m = Buffer.from(good)
      for (let k = 0; k < 3; k++) m[rand(m.length)] = rand(256)
      inputs.push(m)
    }
    for (const input of inputs) {
      try {
        decompress(codec, input, 1 << 20)
      } catch (err) {
        assert.ok(err instanceof CompressionError, `${name}: ${String(err)}`)
      }
    }
    assert.deepEqual(decompress(codec, good), Buffer.from('hello compression '.repeat(500)))
  }
  assert.throws(
    () => decompress(5, Buffer.from('x')),
    (e: unknown) => e instanceof CompressionError && e.code === 76,
  )
  assert.throws(
    () => compress(7, Buffer.from('x')),
    (e: unknown) => e instanceof CompressionError && e.code === 76,
  )
})

// ---- batches written by real clients ----

let broker: BrokerProcess

before(async () => {
  broker = await startBroker()
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(broker.dataDir)
})

/** Every stored batch of a partition (raw Fetch v4 from offset 0, one request). */
async function storedBatchBytes(port: number, topic: string): Promise<Buffer[]> {
  const c = await RawClient.connect(port)
  try {
    c.write(
      requestFrame(1, 4, 1, {
        replicaId: -1,
        maxWaitMs: 0,
        minBytes: 0,
        maxBytes: 64 << 20,
        isolationLevel: 0,
        topics: [{ topic, partitions: [{ partition: 0, fetchOffset: 0, partitionMaxBytes: 64 << 20 }] }],
      }),
    )
    const { body } = parseResponse<FetchResponse>(1, 4, await c.nextFrame())
    const records = body.responses[0].partitions[0].records ?? Buffer.alloc(0)
    const out: Buffer[] = []
    for (let pos = 0; pos + 61 <= records.length;) {
      const size = records.readInt32BE(pos + 8) + 12
      out.push(records.subarray(pos, pos + size))
      pos += size
    }
    return out
  } finally {
    c.close()
  }
}

/** Decodes stored batches with our codecs: [key, value] per record, in offset order. */
function decodeStored(batches: Buffer[]): { codecs: Set<number>; records: [string, string][]; bodies: Buffer[] } {
  const codecs = new Set<number>()
  const records: [string, string][] = []
  const bodies: Buffer[] = []
  for (const b of batches) {
    const h = readBatchHeader(b, 0)
    codecs.add(h.attributes & ATTR_COMPRESSION_MASK)
    if ((h.attributes & ATTR_COMPRESSION_MASK) !== 0) bodies.push(b.subarray(61))
    for (const r of batchRecords(b, 0, h)) {
      // Records decoded from the raw form: key, then value length and bytes at the start of the tail.
      const decoded = decodeTail(r.tail)
      records.push([r.key?.toString() ?? '', decoded])
    }
  }
  return { codecs, records, bodies }
}

/** The value of a record from its tail; a null value reads as ''. */
const decodeTail = (tail: Buffer): string => recordTailValue(tail) ?? ''

void test('kcat (librdkafka) batches of every codec decode with our codecs', async () => {
  for (const name of NAMES) {
    const topic = uniqueTopic(`codec-kcat-${name}`)
    // 1 KB compressible values, big batches: lz4 and snappy span several blocks.
    const sent = Array.from(
      { length: 400 },
      (_, i) => [`k${i % 13}`, `${name}-${i}-${'v'.repeat(1000)}`] as [string, string],
    )
    const input = sent.map(([k, v]) => `${k}:${v}\n`).join('')
    expectSuccess(
      'kcat -P',
      await run(
        'kcat',
        [
          '-b',
          broker.bootstrap,
          '-P',
          '-t',
          topic,
          '-K',
          ':',
          '-z',
          name,
          '-X',
          'acks=all',
          '-X',
          'linger.ms=200',
          '-X',
          'batch.size=1000000',
        ],
        { input, timeoutMs: 40_000 },
      ),
    )
    const { codecs, records, bodies } = decodeStored(await storedBatchBytes(broker.port, topic))
    assert.ok(codecs.has(CODECS[name]), `kcat stored ${name} batches (got codecs ${[...codecs].join(',')})`)
    assert.deepEqual(records, sent, `kcat ${name}`)
    if (name === 'snappy')
      assert.ok(
        bodies.every((b) => !isXerialSnappy(b)),
        'librdkafka writes raw snappy',
      )
    if (name === 'lz4')
      assert.ok(
        bodies.some((b) => b.length > 1000),
        'a multi-block lz4 frame',
      )
  }
})

void test('kafka-python batches of every codec decode with our codecs (xerial snappy, lz4 frames with content size)', async () => {
  const script = join(ROOT, 'test', 'compat', 'python', 'kafka_python_client.py')
  const available = await runPythonJson<Record<string, boolean | string>>(script, ['-', 'codecs'])
  for (const name of NAMES) {
    if (available[name] !== true) continue
    const topic = uniqueTopic(`codec-kp-${name}`)
    // Large batches (batch_size 1 MB) so that frames have several blocks or chunks.
    const program = [
      'import sys',
      'from kafka import KafkaProducer',
      `p = KafkaProducer(bootstrap_servers="${broker.bootstrap}", acks="all", compression_type="${name}", linger_ms=200, batch_size=1048576, max_request_size=4194304)`,
      `fs = [p.send("${topic}", key=("k%d" % (i % 13)).encode(), value=("${name}-%d-" % i + "v" * 1000).encode()) for i in range(400)]`,
      'p.flush()',
      '[f.get(timeout=20) for f in fs]',
      'p.close()',
    ].join('\n')
    expectSuccess(`kafka-python ${name}`, await run(PYTHON, ['-c', program], { timeoutMs: 40_000 }))
    const sent = Array.from(
      { length: 400 },
      (_, i) => [`k${i % 13}`, `${name}-${i}-${'v'.repeat(1000)}`] as [string, string],
    )
    const { codecs, records, bodies } = decodeStored(await storedBatchBytes(broker.port, topic))
    assert.deepEqual([...codecs], [CODECS[name]], `kafka-python stored ${name} batches`)
    assert.deepEqual(records, sent, `kafka-python ${name}`)
    if (name === 'snappy')
      assert.ok(
        bodies.every((b) => isXerialSnappy(b)),
        'kafka-python writes xerial-framed snappy',
      )
    if (name === 'lz4')
      assert.ok(
        bodies.every((b) => (b[4] & 0x08) !== 0),
        'kafka-python (python-lz4) stores the content size in its lz4 frames',
      )
  }
})

void test('an uncompressed batch decodes through the same path', () => {
  const b = encodeRecordBatch({
    records: [
      { key: Buffer.from('a'), value: Buffer.from('1') },
      { key: null, value: null },
    ],
  })
  const recs = batchRecords(b, 0, readBatchHeader(b, 0))
  assert.equal(recs.length, 2)
  assert.equal(recs[0].key?.toString(), 'a')
  assert.equal(recs[1].key, null)
  assert.equal(recs[1].hasValue, false)
})
