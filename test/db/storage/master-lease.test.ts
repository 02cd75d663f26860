// The master lease (src/db/storage/master-lease.ts) with a fake clock: renewal from a heartbeat's
// send time, expiry, and the argument that makes it safe: whatever the heartbeat's delay in the
// log, the master's lease ends before anyone who read that heartbeat counts the master as gone.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  DEFAULT_NODE_SESSION_MS,
  leaseMargin,
  leaseMs,
  NO_LEASE,
  remaining,
  renew,
  takeoverAt,
  valid,
} from '../../../src/db/storage/master-lease.ts'
import { mulberry32 } from '../../../src/util/random.ts'

void test('the lease is the session less a margin of 20%, at least 250 ms', () => {
  assert.equal(leaseMargin(1500), 300)
  assert.equal(leaseMs(1500), 1200)
  assert.equal(leaseMargin(1000), 250)
  assert.equal(leaseMs(1000), 750)
  assert.equal(leaseMs(200), 0, 'a session shorter than the margin gives no lease at all')
  assert.equal(leaseMs(DEFAULT_NODE_SESSION_MS), 1200)
})

void test('no lease until a heartbeat is read back; renewal runs from the send time, not the read time', () => {
  let lease = NO_LEASE
  assert.equal(valid(lease, 0), false)
  // Sent at 100, read back at 900: the lease runs to 100 + 1200, not 900 + 1200.
  lease = renew(lease, 100, 1500)
  assert.equal(lease.until, 1300)
  assert.equal(valid(lease, 900), true)
  assert.equal(remaining(lease, 900), 400)
  assert.equal(valid(lease, 1299.9), true)
  assert.equal(valid(lease, 1300), false)
  assert.equal(remaining(lease, 2000), 0)
})

void test('an older heartbeat read back late never shortens the lease', () => {
  const lease = renew(renew(NO_LEASE, 500, 1500), 250, 1500)
  assert.equal(lease.until, 1700)
  assert.equal(renew(lease, 600, 1500).until, 1800)
})

void test('a master promoted after another waits a whole session from reading its last heartbeat', () => {
  assert.equal(takeoverAt(undefined, 1500), -Infinity, 'never heard of: nothing to wait for')
  assert.equal(takeoverAt(2000, 1500), 3500)
})

void test('for any delay of the heartbeat in the log and clock drift within the margin, the lease ends before the takeover', () => {
  // Real time is the reference. The master's clock and the reader's (controller or new master)
  // run at rates 1 ± drift; each heartbeat is sent at real time s, sits in the log for any delay,
  // and is read by the master (renewing) and by the reader (counting the session) at or after s.
  const rand = mulberry32(7)
  for (let i = 0; i < 100_000; i++) {
    const sessionMs = 200 + Math.floor(rand() * 10_000)
    // Within the margin: the two clocks may disagree by less than the margin over a session.
    const maxDrift = leaseMargin(sessionMs) / sessionMs / 2.5
    const masterRate = 1 + (rand() * 2 - 1) * maxDrift
    const readerRate = 1 + (rand() * 2 - 1) * maxDrift
    const masterOffset = rand() * 1e6
    const readerOffset = rand() * 1e6
    const masterClock = (real: number) => masterOffset + real * masterRate
    const readerClock = (real: number) => readerOffset + real * readerRate
    const sent = rand() * 1e5
    const delay = rand() < 0.1 ? 0 : rand() * 10 * sessionMs
    const readByReader = sent + delay + rand() * 100
    // The master renews from the send time on its own clock.
    const lease = renew(NO_LEASE, masterClock(sent), sessionMs)
    // Real time at which the lease expires on the master's clock.
    const expiresReal = (lease.until - masterOffset) / masterRate
    // Real time at which the reader counts the master gone (controller) or takes over (new master).
    const takeoverReal = (takeoverAt(readerClock(readByReader), sessionMs) - readerOffset) / readerRate
    assert.ok(
      expiresReal < takeoverReal,
      `session ${sessionMs} delay ${delay}: lease ends at ${expiresReal}, takeover at ${takeoverReal}`,
    )
  }
})
