// What request handlers may use of the broker, in small pieces. Each handler names the pieces it
// needs in its signature, so what it can touch is plain to see and a test can hand it just those;
// the Broker satisfies every piece.
import { type GroupCoordinator } from '../groups/coordinator.ts'
import { type TopicManager } from '../topics.ts'

/** Who this broker is, as Metadata and FindCoordinator answers name it. */
export interface BrokerIdentity {
  readonly nodeId: number
  readonly clusterId: string
  /** The address a client of `listener` is given (read per request: ports are known once the broker listens). */
  endpoint(listener: string): { host: string; port: number }
}

/** The named operations of the topic manager. */
export interface TopicsContext<M extends keyof TopicManager> {
  readonly topics: Pick<TopicManager, M>
}

/** The named operations of the group coordinator. */
export interface GroupsContext<M extends keyof GroupCoordinator> {
  readonly groups: Pick<GroupCoordinator, M>
}

/** The byte-rate quotas (src/broker/security/quotas.ts): what a request records, and its throttle time. */
export interface QuotasContext {
  readonly quotas: {
    /** Records `value` against the client's quota; the throttle time in ms (0 within quota or without one). */
    record(key: 'producer_byte_rate' | 'consumer_byte_rate', user: string, clientId: string, value: number): number
    /** The most a fetch may return before the quota throttles it (Infinity without a quota). */
    maxValueInWindow(key: 'consumer_byte_rate', user: string, clientId: string): number
    /** Takes back what a throttled fetch recorded: it is answered without records. */
    unrecord(key: 'consumer_byte_rate', user: string, clientId: string, value: number): void
  }
}

/** A principal's name as quotas know users: `User:alice` → `alice`. */
export function quotaUser(principal: string): string {
  return principal.startsWith('User:') ? principal.slice('User:'.length) : principal
}
