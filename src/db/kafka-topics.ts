// The database's Kafka topics: creating them with the settings replication needs, and checking
// an external Kafka's topics against what no-loss replication requires (docs/database.md,
// Replication: replication factor ≥ 3, min.insync.replicas ≥ 2, unclean leader election off).
import { Admin } from '@platformatic/kafka'
import { hasKafkaError } from '../client/errors.ts'
import { type BrokerRack, rackAwareAssignment } from './rack-assignment.ts'

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

/** Creates the topic unless it exists (an existing topic is left as it is), rack-aware when racks are known. */
export async function ensureTopic(bootstrap: string[], spec: TopicSpec): Promise<'created' | 'exists'> {
  const admin = new Admin({ clientId: 'cortado-admin', bootstrapBrokers: bootstrap, retries: 5, retryDelay: 200 })
  try {
    const existing = await admin.metadata({ topics: [spec.name] }).catch(() => undefined)
    if (existing?.topics.has(spec.name) === true) return 'exists'
    try {
      // The brokers and their racks (a failed metadata call leaves the assignment to the broker).
      const cluster = existing ?? (await admin.metadata({ topics: [] }).catch(() => undefined))
      const brokers = [...(cluster?.brokers ?? [])].map(([id, b]) => ({ id, rack: b.rack ?? null }))
      await admin.createTopics(createTopicsRequest(spec, brokers))
      return 'created'
    } catch (error) {
      // Another process created it in between.
      if (hasKafkaError(error, 'TOPIC_ALREADY_EXISTS')) return 'exists'
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
export async function checkReplicationTopics(bootstrap: string[], topics: string[]): Promise<TopicCheck[]> {
  const admin = new Admin({ clientId: 'cortado-admin', bootstrapBrokers: bootstrap, retries: 3, retryDelay: 200 })
  try {
    const metadata = await admin.metadata({ topics })
    const described = await admin.describeConfigs({
      resources: topics.map((name) => ({
        resourceType: 2,
        resourceName: name,
        configurationKeys: ['min.insync.replicas', 'unclean.leader.election.enable'],
      })),
    })
    return topics.map((topic) => {
      const problems: string[] = []
      const t = metadata.topics.get(topic)
      const rf = t === undefined ? 0 : Math.min(...t.partitions.map((p) => p.replicas.length))
      if (rf < 3) problems.push(`replication factor is ${rf}, needs at least 3`)
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
