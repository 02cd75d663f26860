// How long PartitionLog.open takes to rebuild idempotent producer state:
//   - full scan: no snapshot, every batch header of the log is read (first start after an
//     upgrade, or all snapshots unusable);
//   - after a clean shutdown: the snapshot at the log end, nothing scanned;
//   - after a crash: the last roll snapshot plus the active segment's headers (plus the log's own
//     CRC recovery of that segment, which dominates).
// Usage: node bench/producer-state-scan.ts [totalMB=1024] [batchBytes=1024] [segmentMB=1024]
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Flusher } from '../src/broker/log/flusher.ts'
import { CLEAN_SHUTDOWN_FILE, PartitionLog } from '../src/broker/log/partition-log.ts'
import { listSnapshots, snapshotPath } from '../src/broker/log/producer-snapshot.ts'
import { encodeRecordBatch, readBatchHeader } from '../src/protocol/record-batch.ts'

const totalMB = Number(process.argv[2] ?? 1024)
const batchBytes = Number(process.argv[3] ?? 1024)
const segmentMB = Number(process.argv[4] ?? 1024)
const PRODUCERS = 50
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cortado-pscan-'))
const config = {
  segmentBytes: segmentMB << 20,
  segmentMs: 7 * 86400_000,
  retentionMs: -1,
  retentionBytes: -1,
  indexIntervalBytes: 4096,
}

function dropCaches(): string {
  try {
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3')
    return 'cold page cache'
  } catch {
    return 'warm page cache (cannot drop caches)'
  }
}

async function main(): Promise<void> {
  const flusher = new Flusher()
  let log = PartitionLog.open(dir, config, flusher)
  const seq = new Array<number>(PRODUCERS).fill(0)
  const value = Buffer.alloc(Math.max(1, batchBytes - 61 - 10 * 8), 'x')
  const perBatch = 10
  const records = Array.from({ length: perBatch }, () => ({
    key: null,
    value: value.subarray(0, Math.floor(value.length / perBatch)),
  }))
  let written = 0
  let batches = 0
  const t0 = performance.now()
  while (written < totalMB << 20) {
    const p = batches % PRODUCERS
    const buf = encodeRecordBatch({ producerId: 1000 + p, producerEpoch: 0, baseSequence: seq[p], records })
    seq[p] += perBatch
    const headers = [readBatchHeader(buf, 0)]
    const { baseOffset } = log.append(buf, headers, Date.now())
    log.producerState.recordAppend(headers, baseOffset, Date.now())
    written += buf.length
    batches++
    if (batches % 20000 === 0) await log.flush()
  }
  await log.close()
  console.log(
    `wrote ${(written / 2 ** 20).toFixed(0)} MB in ${batches} batches of ${(written / batches) | 0} bytes, ${log.segmentCount} segments, in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
  )

  // Clean shutdown: the snapshot at the log end.
  let cache = dropCaches()
  log = PartitionLog.open(dir, config, flusher)
  console.log(
    `after clean shutdown (${cache}): snapshot at ${log.producerStateLoad.snapshotOffset}, ${log.producerStateLoad.scannedBatches} headers scanned, ${log.producerStateLoad.ms.toFixed(1)} ms; ${log.producerState.size} producers`,
  )
  await log.close()

  // A crash: no clean-shutdown marker and no close snapshot (the roll snapshots remain).
  const aside = path.join(dir, 'aside')
  fs.mkdirSync(aside)
  const closeSnapshot = listSnapshots(dir)[0]
  fs.renameSync(snapshotPath(dir, closeSnapshot), snapshotPath(aside, closeSnapshot))
  fs.unlinkSync(path.join(dir, CLEAN_SHUTDOWN_FILE))
  cache = dropCaches()
  let started = performance.now()
  log = PartitionLog.open(dir, config, flusher)
  const l = log.producerStateLoad
  console.log(
    `after a crash (${cache}): snapshot at ${l.snapshotOffset}, ${l.scannedBatches} headers scanned in ${l.ms.toFixed(0)} ms; open total (with the log's CRC recovery of the active segment) ${(performance.now() - started).toFixed(0)} ms`,
  )
  await log.close()

  // No snapshot at all: every header.
  for (const run of [1, 2]) {
    for (const o of listSnapshots(dir)) fs.renameSync(snapshotPath(dir, o), snapshotPath(aside, o))
    cache = run === 1 ? dropCaches() : 'warm page cache'
    started = performance.now()
    log = PartitionLog.open(dir, config, flusher)
    const openMs = performance.now() - started
    console.log(
      `full header scan (${cache}): ${log.producerStateLoad.scannedBatches} headers in ${log.producerStateLoad.ms.toFixed(0)} ms (${(written / 2 ** 20 / (log.producerStateLoad.ms / 1000)).toFixed(0)} MB/s of log); open total ${openMs.toFixed(0)} ms`,
    )
    await log.close()
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

await main()
