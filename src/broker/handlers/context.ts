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
