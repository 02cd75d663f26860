// The database's Kafka topics: creating them with the settings replication needs, and checking
// an external Kafka's topics against what no-loss replication requires (docs/database.md,
// Replication: replication factor ≥ 3, min.insync.replicas ≥ 2, unclean leader election off).
//
// A locked-down Kafka may not let us create topics or read their configs (no CreateTopics or
// DescribeConfigs, as in librdkafka's mock cluster, or no ACL for them): topics an operator
// created beforehand are then used as they are, and what could not be done or checked is said
// in a message naming the API, instead of failing obscurely.
import { Admin } from '@platformatic/kafka'
import { hasKafkaError, KafkaTopicError, kafkaRefusal } from '../client/errors.ts'
import { kafkaConnectionOptions, type KafkaSecurity } from '../client/kafka-security.ts'
import { type BrokerRack, rackAwareAssignment } from './rack-assignment.ts'

export { KafkaTopicError }

export interface TopicSpec {
  name: string
  partitions: number
  replicationFactor: number
  configs: Record<string, string>
}

/**
 * The CreateTopics request for `spec`: with brokers' racks known, an explicit rack-aware replica
 * assignment (Kafka then takes partitions and replication factor from it); otherwise the counts,
 * and the broker assigns.
 */
export function createTopicsRequest(spec: TopicSpec, brokers: BrokerRack[]): Parameters<Admin['createTopics']>[0] {
  const configs = Object.entries(spec.configs).map(([name, value]) => ({ name, value }))
  const assignments = rackAwareAssignment(brokers, spec.partitions, spec.replicationFactor)
  if (assignments === null)
    return { topics: [spec.name], partitions: spec.partitions, replicas: spec.replicationFactor, configs }
  return { topics: [spec.name], assignments, configs }
}

/**
 * The brokers and their racks (`broker.rack`), from a Metadata request naming no topic, so that
 * nothing is auto-created.
 */
export async function brokerRacks(admin: Admin): Promise<BrokerRack[]> {
  const cluster = await admin.metadata({ topics: [] })
  return [...cluster.brokers].map(([id, b]) => ({ id, rack: b.rack ?? null }))
}

/** Creates the topic unless it exists (an existing topic is left as it is), rack-aware when racks are known. */
export async function ensureTopic(
  bootstrap: string[],
  spec: TopicSpec,
  security?: KafkaSecurity,
): Promise<'created' | 'exists'> {
  const admin = new Admin({
    clientId: 'cortado-admin',
    bootstrapBrokers: bootstrap,
    ...kafkaConnectionOptions(security),
    retries: 5,
    retryDelay: 200,
  })
  try {
    // Listing every topic, not asking for this one: a Metadata request naming a topic makes a
    // broker that auto-creates topics (librdkafka's mock always does) create it with its defaults.
    const existing = await admin.listTopics().catch(() => undefined)
    if (existing?.includes(spec.name) === true) return 'exists'
    try {
      // If the brokers cannot be read, the broker assigns.
      const brokers = await brokerRacks(admin).catch(() => [])
      await admin.createTopics(createTopicsRequest(spec, brokers))
      return 'created'
    } catch (error) {
      // Another process created it in between.
      if (hasKafkaError(error, 'TOPIC_ALREADY_EXISTS')) return 'exists'
      const why = kafkaRefusal(error)
      if (why !== undefined) {
        const configs = Object.entries(spec.configs)
          .map(([k, v]) => `${k}=${v}`)
          .join(', ')
        throw new KafkaTopicError(
          `topic ${spec.name} does not exist and cannot be created: CreateTopics failed, ${why}. ` +
            `Create it beforehand with ${spec.partitions} partitions, replication factor ${spec.replicationFactor}` +
            `${configs === '' ? '' : ` and ${configs}`}.`,
          { cause: error },
        )
      }
      throw error
    }
  } finally {
    await admin.close().catch(() => undefined)
  }
}

export interface TopicCheck {
  topic: string
  ok: boolean
  /** One sentence per setting that falls short of no-loss replication. */
  problems: string[]
}

/** Checks replication factor, min.insync.replicas and unclean.leader.election.enable of each topic. */
export async function checkReplicationTopics(
  bootstrap: string[],
  topics: string[],
  security?: KafkaSecurity,
): Promise<TopicCheck[]> {
  const admin = new Admin({
    clientId: 'cortado-admin',
    bootstrapBrokers: bootstrap,
    ...kafkaConnectionOptions(security),
    retries: 3,
    retryDelay: 200,
  })
  try {
    // A copy: the library sorts the array it is given, and the checks are returned in our order.
    const metadata = await admin.metadata({ topics: [...topics] })
    // Without DescribeConfigs the replication factor is still checked (Metadata has it), and the
    // two configs are reported as unchecked: a warning, as the operator must vouch for them.
    let unchecked: string | undefined
    const described = await admin
      .describeConfigs({
        resources: topics.map((name) => ({
          resourceType: 2,
          resourceName: name,
          configurationKeys: ['min.insync.replicas', 'unclean.leader.election.enable'],
        })),
      })
      .catch((error: unknown) => {
        const why = kafkaRefusal(error)
        if (why === undefined) throw error
        unchecked = `min.insync.replicas and unclean.leader.election.enable could not be checked: DescribeConfigs failed, ${why}`
        return []
      })
    return topics.map((topic) => {
      const problems: string[] = []
      const t = metadata.topics.get(topic)
      const rf = t === undefined ? 0 : Math.min(...t.partitions.map((p) => p.replicas.length))
      if (rf < 3) problems.push(`replication factor is ${rf}, needs at least 3`)
      if (unchecked !== undefined) return { topic, ok: false, problems: [...problems, unchecked] }
      const configs = new Map(
        (described.find((d) => d.resourceName === topic)?.configs ?? []).map((c) => [c.name, c.value]),
      )
      const minIsr = Number(configs.get('min.insync.replicas') ?? '1')
      if (!(minIsr >= 2))
        problems.push(`min.insync.replicas is ${configs.get('min.insync.replicas') ?? 'unset'}, needs at least 2`)
      if (configs.get('unclean.leader.election.enable') !== 'false')
        problems.push(
          `unclean.leader.election.enable is ${configs.get('unclean.leader.election.enable') ?? 'unset'}, needs false`,
        )
      return { topic, ok: problems.length === 0, problems }
    })
  } finally {
    await admin.close().catch(() => undefined)
  }
}
