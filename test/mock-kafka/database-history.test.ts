// The database on a multi-broker Kafka, every part its own process as in production: three
// `cortado node`s, a `cortado controller` and a `cortado router`, all with `--bootstrap` pointing
// at librdkafka's three-broker mock cluster (test/helpers/mock-kafka.ts), its topics made
// beforehand. A recorded workload runs through the router while the Kafka cluster misbehaves the
// way a production one does: partition leaders move across all three brokers, Produce and Fetch
// requests are answered with retriable errors, a broker is lost after its leaders were elected
// elsewhere, and a broker is lost before any election. The history checker must find nothing
// lost, duplicated or stale, and every replica must end byte-identical. For each fault the test
// prints how long writes took to resume on every partition (the resume bound reported in
// docs/reliability.md).
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { partitionOf } from '../../src/db/metadata/model.ts'
import { METADATA_TOPIC } from '../../src/db/metadata/metadata-log.ts'
import { type DbCluster, startDbCluster } from '../helpers/db-cluster.ts'
import { checkHistory, type Operation } from '../helpers/history/checker.ts'
import { runWorkload, WORKLOAD_TABLES } from '../helpers/history/workload.ts'
import { startMockKafka, type MockKafka } from '../helpers/mock-kafka.ts'

const DB = 'mockhist'
const TOPIC = `cortado-db-${DB}`
const PARTITIONS = 3
const BROKERS = [1, 2, 3]
// Kafka's error codes, as the mock injects them.
const NOT_LEADER_OR_FOLLOWER = 6
const REQUEST_TIMED_OUT = 7
const NOT_ENOUGH_REPLICAS = 19
const LEADER_NOT_AVAILABLE = 5
const PRODUCE = 0
// Its keys (w46-r0…r8, w46-c0…c2) fall on every partition: checked below.
const SEED = 46
const REGISTERS = 9
const FETCH = 1

let mock: MockKafka
let cluster: DbCluster

before(async () => {
  mock = await startMockKafka(3)
  await mock.topic(METADATA_TOPIC, 1, 3)
  await mock.topic(TOPIC, PARTITIONS, 3)
  // The mock holds a fetch for its whole wait even when records arrive (docs/compatibility.md): a short
  // wait keeps writes near Kafka's latency.
  cluster = await startDbCluster({ kafka: mock.bootstrap, nodes: 3, routerRetryMs: 8000, fetchMaxWaitMs: 50 })
  const res = await cluster.http('PUT', `/_admin/databases/${DB}`, {
    partitions: PARTITIONS,
    replicas: 3,
    tables: WORKLOAD_TABLES,
  })
  assert.equal(res.status, 201, JSON.stringify(res.body))
  await cluster.waitCaughtUp(DB)
})

after(async () => {
  await cluster?.stop()
  await mock?.stop()
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A fault of the schedule: what happened, and when (the workload's clock). */
interface FaultEvent {
  what: string
  at: number
}

/** For each fault: how long after it every partition had a write acknowledged that was sent after it. */
function resumeTimes(history: readonly Operation[], events: readonly FaultEvent[]): { what: string; ms: number }[] {
  const acked = history.filter((o) => o.kind !== 'read' && o.outcome === 'ok')
  return events.map((e) => {
    let worst = 0
    for (let p = 0; p < PARTITIONS; p++) {
      const first = acked.find((o) => o.invokedAt >= e.at && partitionOf(o.key, PARTITIONS) === p)
      worst = Math.max(worst, first === undefined ? Infinity : first.completedAt - e.at)
    }
    return { what: e.what, ms: Math.round(worst) }
  })
}

/** Moves every partition's leader (the database's and the metadata topic's) one broker on. */
async function moveAllLeaders(round: number): Promise<void> {
  for (let p = 0; p < PARTITIONS; p++) await mock.leader(TOPIC, p, BROKERS[(p + round) % 3])
  await mock.leader(METADATA_TOPIC, 0, BROKERS[(round + 1) % 3])
}

/** Makes `except` lead nothing: what Kafka's controller does when a broker is lost. */
async function electAwayFrom(except: number): Promise<void> {
  const others = BROKERS.filter((b) => b !== except)
  for (let p = 0; p < PARTITIONS; p++) await mock.leader(TOPIC, p, others[p % 2])
  await mock.leader(METADATA_TOPIC, 0, others[1])
}

void test(
  'node, router and controller on a three-broker Kafka: leaders move, requests fail, brokers are lost; the history is checked',
  { timeout: 240_000 },
  async (t) => {
    const registersOn = (p: number) =>
      Array.from({ length: REGISTERS }, (_, i) => `w${SEED}-r${i}`).filter((k) => partitionOf(k, PARTITIONS) === p)
    for (let p = 0; p < PARTITIONS; p++) assert.ok(registersOn(p).length >= 2, `the workload writes to partition ${p}`)
    const t0 = performance.now()
    const clock = () => performance.now() - t0
    const events: FaultEvent[] = []
    const mark = (what: string) => events.push({ what, at: clock() })
    const faults = async () => {
      await moveAllLeaders(0) // a known starting point: partition p on broker p+1
      for (let round = 1; round <= 3; round++) {
        await sleep(1500)
        mark(`leaders of every partition moved to another broker (round ${round})`)
        await moveAllLeaders(round)
      }
      await sleep(1500)
      mark('Produce answered NOT_LEADER_OR_FOLLOWER, NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT (twice each)')
      await mock.errors(
        PRODUCE,
        NOT_LEADER_OR_FOLLOWER,
        NOT_ENOUGH_REPLICAS,
        REQUEST_TIMED_OUT,
        NOT_LEADER_OR_FOLLOWER,
        NOT_ENOUGH_REPLICAS,
        REQUEST_TIMED_OUT,
      )
      await sleep(1500)
      mark('Fetch answered NOT_LEADER_OR_FOLLOWER and LEADER_NOT_AVAILABLE (three times each)')
      await mock.errors(
        FETCH,
        ...Array.from({ length: 3 }, () => [NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE]).flat(),
      )
      await sleep(1500)
      mark('broker 2 lost after its leaders were elected elsewhere')
      await electAwayFrom(2)
      await mock.down(2)
      await sleep(3000)
      mark('broker 2 back, leaders moved back onto it')
      await mock.up(2)
      await moveAllLeaders(1)
      await sleep(1500)
      // Lost before an election: broker 3 leads partition 1 and the metadata topic (round 1),
      // which cannot be written until it is back, as on Kafka between a leader's loss and its
      // election. The masters' leases run out meanwhile (they hear nothing back from the log).
      mark('broker 3 lost before any election (it leads partition 1 and the metadata topic)')
      await mock.down(3)
      await sleep(2000)
      mark('broker 3 back after 2 s lost before any election')
      await mock.up(3)
      await sleep(1500)
      mark('leaders moved once more')
      await moveAllLeaders(2)
    }
    const faultsDone = faults()
    const { history, final } = await runWorkload({
      url: cluster.router.url,
      db: DB,
      clients: 6,
      registers: REGISTERS,
      counters: 3,
      durationMs: 24_000,
      seed: SEED,
      clock,
    })
    await faultsDone

    const report = checkHistory(history, final)
    t.diagnostic(`history: ${JSON.stringify(report.counts)}`)
    const resumed = resumeTimes(history, events)
    for (const r of resumed) t.diagnostic(`writes resumed on every partition ${r.ms} ms after: ${r.what}`)
    assert.deepEqual(report.anomalies, [], JSON.stringify(report.counts))
    assert.ok(report.valid)
    assert.ok(report.counts.acknowledged > 100, JSON.stringify(report.counts))
    // Every fault was followed by acknowledged writes on every partition before the workload ended.
    for (const r of resumed) assert.ok(Number.isFinite(r.ms), `writes never resumed after: ${r.what}`)

    const write = await cluster.http('PUT', `/${DB}/registers/after-faults`, { id: 'after-faults', value: 'x' })
    assert.equal(write.status, 200, JSON.stringify(write.body))
    await cluster.waitCaughtUp(DB, 90_000)
    for (const replicas of await cluster.digests(DB)) {
      assert.equal(replicas.length, 3)
      assert.equal(new Set(replicas.map((r) => r.fileDigest)).size, 1, JSON.stringify(replicas))
    }
  },
)
