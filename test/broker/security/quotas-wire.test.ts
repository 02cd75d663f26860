// Client quotas on the wire: set with `cortado quota` (AlterClientQuotas) and in force at once; a
// producer flooding past its producer_byte_rate is answered with throttle_time_ms and held near
// its quota while another client's requests keep their latency (figures printed); a consumer over
// its consumer_byte_rate gets empty throttled fetches; request_percentage throttles a client that
// keeps the broker busy; quotas survive a restart; bad values are refused with Kafka's error.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import { ApiKey } from '../../../src/protocol/apis.ts'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import { type FetchResponse } from '../../../src/protocol/messages/fetch-response.ts'
import { type ProduceResponse } from '../../../src/protocol/messages/produce-response.ts'
import { encodeRecordBatch } from '../../../src/protocol/record-batch.ts'
import { type BrokerProcess, MAIN, removeDir, ROOT, startBroker, tempDir } from '../../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../../helpers/raw-client.ts'

const run = promisify(execFile)
let broker: BrokerProcess
let dataDir: string
const TOPIC = 'quota-test'
/** The flooder's quota: 200 KB/s. */
const PRODUCE_QUOTA = 200_000
// Rates over 3 samples of 1 s (Kafka's default is 11): a client may burst (samples - 1) seconds of
// its quota before it is throttled, so a short test sees the long-run rate sooner.
const WINDOWS = 3
const CONFIG = { 'num.partitions': '1', 'quota.window.num': String(WINDOWS), 'quota.window.size.seconds': '1' }

async function cortadoQuota(...args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout } = await run(process.execPath, [MAIN, 'quota', ...args, '--bootstrap', broker.bootstrap])
    return { code: 0, out: stdout }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, out: err.stdout + err.stderr }
  }
}

const batch = (bytes: number) =>
  encodeRecordBatch({ records: [{ key: null, value: Buffer.alloc(bytes, 0x61), timestamp: Date.now() }] })

/** One produce of `bytes` by a raw client with this client id; its throttle time and its latency. */
async function produceOnce(c: RawClient, clientId: string, correlationId: number, bytes: number) {
  const started = performance.now()
  c.write(
    requestFrame(
      ApiKey.Produce,
      8,
      correlationId,
      {
        transactionalId: null,
        acks: -1,
        timeoutMs: 30_000,
        topicData: [{ name: TOPIC, partitionData: [{ index: 0, records: batch(bytes) }] }],
      },
      clientId,
    ),
  )
  const { body } = parseResponse<ProduceResponse>(ApiKey.Produce, 8, await c.nextFrame(30_000))
  assert.equal(body.responses[0].partitionResponses[0].errorCode, ErrorCode.NONE)
  return { throttleTimeMs: body.throttleTimeMs, ms: performance.now() - started }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

before(async () => {
  dataDir = tempDir('quotas')
  broker = await startBroker({ dataDir, config: CONFIG, metrics: true })
  // Metadata naming the topic creates it (auto.create.topics.enable), with one partition.
  const c = await RawClient.connect(broker.port)
  c.write(requestFrame(ApiKey.Metadata, 1, 1, { topics: [{ name: TOPIC }] }))
  await c.nextFrame()
  c.close()
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(dataDir)
})

void test('cortado quota set/list: in force at once, listed as Kafka describes it; bad values refused', async () => {
  const set = await cortadoQuota('set', '--client-id', 'flooder', `producer_byte_rate=${PRODUCE_QUOTA}`)
  assert.equal(set.code, 0, set.out)
  assert.equal((await cortadoQuota('set', '--user-default', 'request_percentage=200')).code, 0)
  const listed = await cortadoQuota('list')
  assert.match(listed.out, new RegExp(`^client-id=flooder\\tproducer_byte_rate=${PRODUCE_QUOTA}$`, 'm'))
  assert.match(listed.out, /^user=<default>\trequest_percentage=200$/m)
  const bad = await cortadoQuota('set', '--client-id', 'x', 'producer_byte_rate=-5')
  assert.equal(bad.code, 1)
  assert.match(bad.out, /client-id=x: refused: /)
  assert.equal((await cortadoQuota('set', '--user-default', '--remove', 'request_percentage')).code, 0)
  assert.doesNotMatch((await cortadoQuota('list')).out, /request_percentage/)
})

void test('a producer over producer_byte_rate is throttled to it (KIP-219) while another client keeps its latency', async () => {
  const victim = await RawClient.connect(broker.port)
  const victimLatency = async (n: number) => {
    const ms: number[] = []
    for (let i = 0; i < n; i++) ms.push((await produceOnce(victim, 'victim', 1000 + i, 100)).ms)
    return ms
  }
  const before = await victimLatency(50)

  // The flooder: 50 KB per request, as fast as the broker reads it, for 8 s.
  const flooder = await RawClient.connect(broker.port)
  const throttles: number[] = []
  let sent = 0
  const started = performance.now()
  const during: number[] = []
  const victimRun = (async () => {
    await new Promise((r) => setTimeout(r, 1000))
    during.push(...(await victimLatency(50)))
  })()
  for (let i = 0; performance.now() - started < 8000; i++) {
    const r = await produceOnce(flooder, 'flooder', i, 50_000)
    sent += 50_000
    throttles.push(r.throttleTimeMs)
  }
  const seconds = (performance.now() - started) / 1000
  await victimRun
  flooder.close()
  victim.close()
  const rate = sent / seconds
  console.log(
    `quota figures: flooder ${Math.round(rate / 1000)} KB/s against a quota of ${PRODUCE_QUOTA / 1000} KB/s ` +
      `(${throttles.filter((t) => t > 0).length} of ${throttles.length} answers throttled, max ${Math.max(...throttles)} ms); ` +
      `victim produce p50 ${median(before).toFixed(2)} ms before the flood, ${median(during).toFixed(2)} ms during it`,
  )
  // Unthrottled, one connection sends tens of MB/s here. Throttled, a client gets its quota over the
  // run plus the burst the rate window allows ((samples - 1) seconds of quota), and no more.
  assert.ok(
    throttles.some((t) => t > 0),
    'the flooder was told to wait',
  )
  const allowed = PRODUCE_QUOTA * (seconds + WINDOWS - 1)
  assert.ok(sent <= 1.25 * allowed, `flooder sent ${sent} B in ${seconds.toFixed(1)} s; its quota allows ${allowed}`)
  assert.equal(during.length, 50, 'every victim request was answered')
  const metrics = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  assert.match(metrics, /^cortado_broker_quota_throttled_total\{quota="producer_byte_rate"\} [1-9]/m)
})

void test('confluent-kafka (librdkafka) over its producer quota: throttle_cb reports the broker throttle, delivery held to the quota', async () => {
  assert.equal(
    (await cortadoQuota('set', '--client-id', 'rdkafka-flooder', `producer_byte_rate=${PRODUCE_QUOTA}`)).code,
    0,
  )
  const { stdout } = await run(
    '/usr/bin/python3',
    [join(ROOT, 'test/compat/python/quota_flood.py'), broker.bootstrap, TOPIC, 'rdkafka-flooder', '6', '10000'],
    { timeout: 60_000 },
  )
  const r = JSON.parse(stdout) as { delivered: number; seconds: number; throttles_ms: number[]; errors: string[] }
  console.log(
    `quota figures: librdkafka flooder delivered ${Math.round(r.delivered / r.seconds / 1000)} KB/s over ${r.seconds.toFixed(1)} s ` +
      `against ${PRODUCE_QUOTA / 1000} KB/s; ${r.throttles_ms.length} throttles reported, max ${Math.max(0, ...r.throttles_ms)} ms`,
  )
  assert.deepEqual(r.errors, [])
  assert.ok(
    r.throttles_ms.some((t) => t > 0),
    'librdkafka reported a throttle',
  )
  assert.ok(r.delivered > 0)
  // Delivered within the quota plus the window's burst (librdkafka also waits the throttle time itself).
  assert.ok(r.delivered <= 1.25 * PRODUCE_QUOTA * (r.seconds + WINDOWS - 1), `${r.delivered} B in ${r.seconds} s`)
})

void test('a consumer over consumer_byte_rate gets empty fetches with the throttle time', async () => {
  assert.equal((await cortadoQuota('set', '--client-id', 'reader', 'consumer_byte_rate=100000')).code, 0)
  const c = await RawClient.connect(broker.port)
  const fetch = async (correlationId: number) => {
    c.write(
      requestFrame(
        ApiKey.Fetch,
        11,
        correlationId,
        {
          replicaId: -1,
          maxWaitMs: 0,
          minBytes: 0,
          maxBytes: 1 << 20,
          isolationLevel: 0,
          sessionId: 0,
          sessionEpoch: -1,
          topics: [
            {
              topic: TOPIC,
              partitions: [
                {
                  partition: 0,
                  currentLeaderEpoch: -1,
                  fetchOffset: 0,
                  logStartOffset: -1,
                  partitionMaxBytes: 1 << 20,
                },
              ],
            },
          ],
          forgottenTopicsData: [],
          rackId: '',
        },
        'reader',
      ),
    )
    return parseResponse<FetchResponse>(ApiKey.Fetch, 11, await c.nextFrame(30_000)).body
  }
  const first = await fetch(1)
  const bytes = first.responses[0].partitions[0].records?.length ?? 0
  assert.ok(bytes > 100_000, `the first fetch read ${bytes} bytes`)
  // That was far over 100 KB/s: the next answer carries no records and the throttle time.
  const second = await fetch(2)
  c.close()
  assert.ok(second.throttleTimeMs > 0, `throttle ${second.throttleTimeMs}`)
  assert.deepEqual(second.responses, [])
})

void test('request_percentage: a client keeping the broker busy is throttled; one within its share is not', async () => {
  // 1% of one thread: 10 ms of the broker's time per second.
  assert.equal((await cortadoQuota('set', '--client-id', 'busy', 'request_percentage=1')).code, 0)
  const c = await RawClient.connect(broker.port)
  let throttle = 0
  let i = 0
  // Each 500 KB produce takes the broker a millisecond or more to check (CRCs) and append.
  for (; i < 200 && throttle === 0; i++) throttle = (await produceOnce(c, 'busy', i, 500_000)).throttleTimeMs
  c.close()
  assert.ok(throttle > 0, `no throttle after ${i} requests`)
  // Without a quota the same requests are never throttled.
  const free = await RawClient.connect(broker.port)
  for (let j = 0; j < i; j++) assert.equal((await produceOnce(free, 'free', j, 500_000)).throttleTimeMs, 0)
  free.close()
})

void test('quotas survive a restart', async () => {
  assert.equal(await broker.stop(), 0)
  broker = await startBroker({ dataDir, config: CONFIG, metrics: true })
  assert.match((await cortadoQuota('list', '--client-id', 'flooder')).out, /producer_byte_rate=200000/)
  const c = await RawClient.connect(broker.port)
  let throttled = false
  for (let i = 0; i < 40 && !throttled; i++)
    throttled = (await produceOnce(c, 'flooder', i, 100_000)).throttleTimeMs > 0
  c.close()
  assert.ok(throttled)
})
