// The master lease: a master serves master reads and writes only while it holds a lease, and the
// lease is renewed only by what the master hears back from the log. Pure: every time is a reading
// of the caller's monotonic clock (performance.now()), passed in.
//
// The rule (docs/database.md, "Master lease"):
// - A node stamps each heartbeat it writes to the metadata log with a nonce and keeps the
//   monotonic time it sent it. When it reads that heartbeat back, the log accepted it at or after
//   the send time. If the metadata it has read up to that heartbeat still names it master of the
//   partition under its generation, the lease runs until sendTime + leaseMs, where
//   leaseMs = sessionMs − margin(sessionMs).
// - Anyone who reads the node's heartbeat at local time t can only count the node as possibly
//   serving until t + sessionMs: the controller declares the node dead no earlier than that, and a
//   node promoted to master after another node waits until that point before it takes writes
//   (`takeoverAt`). Since t ≥ sendTime, and leaseMs < sessionMs by the margin, the old master's
//   lease ends first for any delay of the heartbeat in the log, as long as the two monotonic
//   clocks drift apart by less than the margin over one session.
// - A heartbeat that comes after the placement replacing the master in the log never renews
//   (the node reads that placement first), so the last renewal comes from a heartbeat before
//   the new placement: every process that acts on the new placement has read that heartbeat.

export { DEFAULT_NODE_SESSION_MS } from '../metadata/model.ts'

/** Safety margin for clock-rate drift and scheduling: 20% of the session, at least 250 ms. */
export function leaseMargin(sessionMs: number): number {
  return Math.max(250, Math.round(sessionMs * 0.2))
}

/** How long one renewal lasts from the heartbeat's send time. */
export function leaseMs(sessionMs: number): number {
  return Math.max(0, sessionMs - leaseMargin(sessionMs))
}

export interface MasterLease {
  /** Monotonic time the lease ends (exclusive); -Infinity: never held. */
  readonly until: number
}

export const NO_LEASE: MasterLease = { until: -Infinity }

/** The lease after reading back a heartbeat sent at `sendTime`; never shortened by an older heartbeat. */
export function renew(lease: MasterLease, sendTime: number, sessionMs: number): MasterLease {
  const until = sendTime + leaseMs(sessionMs)
  return until > lease.until ? { until } : lease
}

export function valid(lease: MasterLease, now: number): boolean {
  return now < lease.until
}

/** Milliseconds left (0 when expired). */
export function remaining(lease: MasterLease, now: number): number {
  return Math.max(0, lease.until - now)
}

/**
 * When a node promoted after another master may take writes: the previous master may have renewed
 * from any heartbeat before the placement that replaced it, and this node read the last of them at
 * `lastHeartbeatReadAt` (its own clock); the previous master counts as possibly serving until a
 * whole session after that read, as the controller counts it.
 */
export function takeoverAt(lastHeartbeatReadAt: number | undefined, sessionMs: number): number {
  return lastHeartbeatReadAt === undefined ? -Infinity : lastHeartbeatReadAt + sessionMs
}
