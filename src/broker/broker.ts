// The single-node broker: configuration, topics on disk, the Kafka listener and its handlers,
// retention, metrics. `Broker.start` returns once it accepts connections; `stop` shuts down
// cleanly (logs closed with their clean-shutdown markers).
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import * as prom from 'prom-client'
import { type Registry } from 'prom-client'
import { lockDataDir } from '../util/data-dir-lock.ts'
import { Logger } from '../util/log.ts'
import { createRegistry } from '../util/metrics.ts'
import { BrokerConfig } from './config.ts'
import { FetchWaiters } from './fetch-waiters.ts'
import { Flusher } from './log/flusher.ts'
import { Journal } from './log/journal.ts'
import { ProducerIdAllocator } from './producer-ids.ts'
import { type AccessControl, type AnyHandler, KafkaServer, type ServerListener } from './server.ts'
import { AclStore } from './security/acl-store.ts'
import { ClientQuotaStore } from './security/quota-store.ts'
import { QuotaManager } from './security/quotas.ts'
import { quotaUser } from './handlers/context.ts'
import { describeClientQuotasHandler } from './handlers/describe-client-quotas.ts'
import { alterClientQuotasHandler } from './handlers/alter-client-quotas.ts'
import { operationName, resourceTypeName } from './security/acls.ts'
import { Authorizer, parseSuperUsers } from './security/authorizer.ts'
import { createAclsHandler } from './handlers/create-acls.ts'
import { describeAclsHandler } from './handlers/describe-acls.ts'
import { deleteAclsHandler } from './handlers/delete-acls.ts'
import { advertisedEndpoint, type ListenerSpec, parseListeners } from './listeners.ts'
import { parseJaasConfig, plainUsers } from './security/jaas.ts'
import { SaslAuthenticator } from './security/sasl-authenticator.ts'
import { ScramCredentialStore } from './security/scram-credentials.ts'
import { tlsServerOptions } from './security/tls.ts'
import { saslAuthenticateHandler, saslHandshakeHandler } from './handlers/sasl.ts'
import { alterUserScramCredentialsHandler } from './handlers/alter-user-scram-credentials.ts'
import { describeUserScramCredentialsHandler } from './handlers/describe-user-scram-credentials.ts'
import { TopicManager } from './topics.ts'
import { LogCleaner, mapKeysForBuffer } from './log/cleaner.ts'
import { apiVersionsHandler } from './handlers/api-versions.ts'
import { metadataHandler } from './handlers/metadata.ts'
import { produceHandler } from './handlers/produce.ts'
import { fetchHandler } from './handlers/fetch.ts'
import { listOffsetsHandler } from './handlers/list-offsets.ts'
import { createTopicsHandler } from './handlers/create-topics.ts'
import { deleteTopicsHandler } from './handlers/delete-topics.ts'
import { createPartitionsHandler } from './handlers/create-partitions.ts'
import { describeConfigsHandler } from './handlers/describe-configs.ts'
import { initProducerIdHandler } from './handlers/init-producer-id.ts'
import { findCoordinatorHandler } from './handlers/find-coordinator.ts'
import { joinGroupHandler } from './handlers/join-group.ts'
import { syncGroupHandler } from './handlers/sync-group.ts'
import { heartbeatHandler } from './handlers/heartbeat.ts'
import { leaveGroupHandler } from './handlers/leave-group.ts'
import { offsetCommitHandler } from './handlers/offset-commit.ts'
import { offsetFetchHandler } from './handlers/offset-fetch.ts'
import { describeGroupsHandler } from './handlers/describe-groups.ts'
import { listGroupsHandler } from './handlers/list-groups.ts'
import { deleteGroupsHandler } from './handlers/delete-groups.ts'
import { offsetDeleteHandler } from './handlers/offset-delete.ts'
import { GroupCoordinator } from './groups/coordinator.ts'

export interface BrokerOptions {
  /** The PLAINTEXT listener's address when the `listeners` setting is empty; the host of `listeners` entries without one. */
  readonly host: string
  readonly port: number
  readonly dataDir: string
  readonly settings?: Readonly<Record<string, string>>
  readonly log?: Logger
  readonly registry?: Registry
}

export interface BrokerMetrics {
  producedBytes: prom.Counter<'topic'>
  producedBatches: prom.Counter<'topic'>
  fetchedBytes: prom.Counter
  produceErrors: prom.Counter<'error'>
}

export { DataDirLockedError } from '../util/data-dir-lock.ts'

export class Broker {
  readonly config: BrokerConfig
  readonly dataDir: string
  readonly nodeId: number
  readonly clusterId: string
  readonly host: string
  readonly log: Logger
  readonly registry: Registry
  readonly flusher: Flusher
  readonly topics: TopicManager
  readonly waiters = new FetchWaiters()
  readonly groups: GroupCoordinator
  readonly metrics: BrokerMetrics
  /** Producer ids for InitProducerId: durable state of this data directory, so the broker owns it. */
  readonly producerIds: ProducerIdAllocator
  /** cortado.fsync=ack: acks=1/all produce waits for fdatasync. */
  readonly fsyncOnAck: boolean
  /** The first listener's bound port, once listening. */
  port = 0
  /** Each listener, with its bound port once listening (listeners, advertised.listeners). */
  readonly listeners: readonly ListenerSpec[]
  private readonly boundPorts = new Map<string, number>()
  /** SCRAM credentials (AlterUserScramCredentials), durable in the data directory. */
  readonly scramCredentials: ScramCredentialStore
  /** ACLs (CreateAcls), durable in the data directory; enforced only with an authorizer. */
  readonly acls: AclStore
  /** authorizer.class.name is set: every request is checked against the ACLs. */
  readonly authorizerEnabled: boolean
  /** Client quotas (AlterClientQuotas), durable in the data directory, in force at once. */
  readonly clientQuotas: ClientQuotaStore
  /** Rates measured against the client quotas, and the throttle times they give. */
  readonly quotas: QuotaManager
  private server: KafkaServer | undefined
  private retentionTimer: NodeJS.Timeout | undefined
  /** Compaction of cleanup.policy=compact topics (log.cleaner.enable). */
  private cleaner: LogCleaner | undefined
  private releaseLock: () => void = () => undefined
  /** The write-ahead journal (cortado.fsync=ack with cortado.journal=true). */
  private readonly journal: Journal | undefined

  private constructor(options: BrokerOptions) {
    this.config = new BrokerConfig(options.settings)
    this.dataDir = resolve(options.dataDir)
    this.nodeId = this.config.number('node.id')
    this.fsyncOnAck = this.config.get('cortado.fsync') === 'ack'
    this.host = options.host
    this.log = (options.log ?? new Logger()).child({ component: 'broker', node: this.nodeId })
    this.registry = options.registry ?? createRegistry()
    mkdirSync(this.dataDir, { recursive: true })
    this.lock()
    this.clusterId = this.loadClusterId()
    this.journal =
      this.fsyncOnAck && this.config.bool('cortado.journal') ? Journal.open(join(this.dataDir, 'journal')) : undefined
    this.flusher = new Flusher({
      journal: this.journal,
      journalDirectBytes: this.config.number('cortado.journal.direct.bytes'),
    })
    this.topics = new TopicManager(this.dataDir, this.config, this.flusher, this.log)
    this.groups = new GroupCoordinator(this.topics, this.config, this.log, this.fsyncOnAck)
    this.producerIds = new ProducerIdAllocator(this.dataDir)
    this.listeners = parseListeners(
      {
        listeners: this.config.get('listeners'),
        advertisedListeners: this.config.get('advertised.listeners'),
        protocolMap: this.config.get('listener.security.protocol.map'),
      },
      options.host,
      options.port,
    )
    this.scramCredentials = ScramCredentialStore.open(this.dataDir)
    this.acls = AclStore.open(this.dataDir)
    this.authorizerEnabled = this.config.get('authorizer.class.name') !== ''
    this.clientQuotas = ClientQuotaStore.open(this.dataDir)
    this.quotas = createQuotaManager(this.config, this.clientQuotas, this.registry)
    const reg = [this.registry]
    this.metrics = {
      producedBytes: new prom.Counter({
        name: 'cortado_broker_produced_bytes_total',
        help: 'Record batch bytes appended, by topic',
        labelNames: ['topic'],
        registers: reg,
      }),
      producedBatches: new prom.Counter({
        name: 'cortado_broker_produced_batches_total',
        help: 'Record batches appended, by topic',
        labelNames: ['topic'],
        registers: reg,
      }),
      fetchedBytes: new prom.Counter({
        name: 'cortado_broker_fetched_bytes_total',
        help: 'Record bytes returned to fetches',
        registers: reg,
      }),
      produceErrors: new prom.Counter({
        name: 'cortado_broker_produce_errors_total',
        help: 'Partitions of produce requests refused, by error',
        labelNames: ['error'],
        registers: reg,
      }),
    }
    const fsyncSeconds = new prom.Histogram({
      name: 'cortado_broker_fsync_round_seconds',
      help: 'Duration of group-commit fdatasync rounds',
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers: reg,
    })
    const fsyncFiles = new prom.Counter({
      name: 'cortado_broker_fsync_files_total',
      help: "Files fdatasync'ed by group-commit rounds",
      registers: reg,
    })
    this.flusher.onRound = (ms, files) => {
      fsyncSeconds.observe(ms / 1000)
      fsyncFiles.inc(files)
    }
    const flusher = this.flusher
    new prom.Counter({
      name: 'cortado_broker_journal_checkpoints_total',
      help: 'Journal checkpoints: rounds that also synced every segment written since the last, then moved to a new journal file',
      registers: reg,
      collect() {
        this.reset()
        this.inc(flusher.checkpoints)
      },
    })
    const groups = this.groups
    new prom.Gauge({
      name: 'cortado_broker_groups',
      help: 'Consumer groups, by state',
      labelNames: ['state'],
      registers: reg,
      collect() {
        this.reset()
        for (const g of groups.list()) this.inc({ state: g.state })
      },
    })
    const topics = this.topics
    new prom.Gauge({
      name: 'cortado_broker_partitions',
      help: 'Partitions hosted',
      registers: reg,
      collect() {
        this.set(topics.list().reduce((n, t) => n + t.partitions.length, 0))
      },
    })
  }

  static async start(options: BrokerOptions): Promise<Broker> {
    const broker = new Broker(options)
    try {
      broker.topics.load()
      // Records a crashed broker left in the page cache, and those replayed from the journal,
      // become durable before anyone reads them; then the journal's old files are redundant.
      await broker.flusher.flush()
      broker.reportJournalRecovery()
      broker.journal?.dropRecovered()
      broker.groups.start()
      broker.server = new KafkaServer({
        listeners: broker.listeners.map((l) => broker.serverListener(l)),
        accessControl: broker.authorizerEnabled ? broker.accessControl() : undefined,
        requestQuota: (principal, clientId, handlerMs) =>
          broker.quotas.record('request_percentage', quotaUser(principal), clientId, handlerMs),
        maxFrameBytes: broker.config.number('socket.request.max.bytes'),
        maxInflight: broker.config.number('cortado.max.inflight.requests.per.connection'),
        handlers: broker.handlers(),
        log: broker.log,
        registry: broker.registry,
      })
      for (const [name, port] of await broker.server.listen()) broker.boundPorts.set(name, port)
      broker.port = broker.boundPorts.get(broker.listeners[0].name)!
    } catch (err) {
      await broker.topics.close()
      broker.journal?.close(false)
      broker.unlock()
      throw err
    }
    const interval = broker.config.number('log.retention.check.interval.ms')
    broker.retentionTimer = setInterval(() => broker.topics.applyRetention(), interval)
    broker.retentionTimer.unref()
    if (broker.config.bool('log.cleaner.enable')) {
      broker.cleaner = new LogCleaner({
        targets: () => broker.topics.compactedLogs(),
        backoffMs: broker.config.number('log.cleaner.backoff.ms'),
        maxMapKeys: mapKeysForBuffer(broker.config.number('log.cleaner.dedupe.buffer.size')),
        logger: broker.log,
        registry: broker.registry,
      })
      broker.cleaner.start()
    }
    broker.log.info('broker started', {
      host: broker.host,
      port: broker.port,
      listeners: broker.listeners.map((l) => `${l.name}://${l.host}:${broker.boundPorts.get(l.name)} (${l.protocol})`),
      dataDir: broker.dataDir,
      clusterId: broker.clusterId,
    })
    return broker
  }

  /** Logs what the journal replayed into logs that lost their tail (a machine crash). */
  private reportJournalRecovery(): void {
    const journal = this.journal
    if (journal === undefined || journal.recovery.files === 0) return
    let batches = 0
    for (const topic of this.topics.list())
      for (const [partition, log] of topic.partitions.entries()) {
        batches += log.journalReplay.batches
        if (log.journalReplay.gapAt !== null)
          this.log.error('the journal does not continue a recovered log: its later batches were not replayed', {
            topic: topic.name,
            partition,
            logEndOffset: log.journalReplay.gapAt,
          })
      }
    this.log.info('journal recovered', { ...journal.recovery, replayedBatches: batches })
  }

  /** NAME://host:port of each listener as bound, comma-separated (the CLI's ready line). */
  listenerSummary(): string {
    return this.listeners.map((l) => `${l.name}://${l.host}:${this.boundPorts.get(l.name) ?? l.port}`).join(',')
  }

  /** The host:port Metadata and FindCoordinator give a client of `listener` (Kafka answers per listener). */
  endpoint(listener: string): { host: string; port: number } {
    const spec = this.listeners.find((l) => l.name === listener) ?? this.listeners[0]
    return advertisedEndpoint(spec, this.boundPorts.get(spec.name) ?? 0, this.config.get('advertised.host.name'))
  }

  /**
   * The authorizer as the server asks it, every denial logged and counted (as Kafka's authorizer
   * log does) so an operator can see who was refused what.
   */
  private accessControl(): AccessControl {
    const acls = this.acls
    const authorizer = new Authorizer({
      superUsers: parseSuperUsers(this.config.get('super.users')),
      allowEveryoneIfNoAclFound: this.config.bool('allow.everyone.if.no.acl.found'),
      acls: () => acls.list(),
      version: () => acls.version,
    })
    const denied = new prom.Counter({
      name: 'cortado_broker_authorization_denied_total',
      help: 'Requests (or parts of them) refused by the ACLs, by operation and resource type',
      labelNames: ['operation', 'resource_type'],
      registers: [this.registry],
    })
    const log = this.log.child({ component: 'authorizer' })
    const refused = (
      principal: string,
      host: string,
      operation: number,
      resourceType: number,
      resourceName: string,
    ) => {
      denied.inc({ operation: operationName(operation), resource_type: resourceTypeName(resourceType) })
      log.info('authorization denied', {
        principal,
        host,
        operation: operationName(operation),
        resourceType: resourceTypeName(resourceType),
        resourceName,
      })
      return false
    }
    return {
      authorize: (principal, host, operation, resourceType, resourceName, logIfDenied) =>
        authorizer.authorize({ principal, host, operation, resourceType, resourceName }) ||
        (logIfDenied && refused(principal, host, operation, resourceType, resourceName)),
      // Asked as one of two alternatives (InitProducerId): the handler's refusal is what counts.
      authorizeAny: (principal, host, operation, resourceType) =>
        authorizer.authorizeAny(principal, host, operation, resourceType),
    }
  }

  /** The server side of one listener: TLS for SSL and SASL_SSL, a SASL exchange per connection for SASL_*. */
  private serverListener(spec: ListenerSpec): ServerListener {
    const tls =
      spec.protocol === 'SSL' || spec.protocol === 'SASL_SSL' ? tlsServerOptions(this.config, spec.name) : undefined
    if (spec.protocol !== 'SASL_PLAINTEXT' && spec.protocol !== 'SASL_SSL')
      return { name: spec.name, host: spec.host, port: spec.port, tls }
    const get = (key: string) => this.config.forListener(spec.name, key)
    const mechanisms = get('sasl.enabled.mechanisms')
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '')
    const jaas = this.config.forListener(spec.name, 'sasl.jaas.config', 'PLAIN')
    const users = jaas === '' ? new Map<string, string>() : plainUsers(parseJaasConfig(jaas).options)
    if (mechanisms.includes('PLAIN') && users.size === 0)
      this.log.warn('PLAIN is enabled but no PLAIN users are configured: every PLAIN login fails', {
        listener: spec.name,
        hint: `listener.name.${spec.name.toLowerCase()}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_<name>="<password>";`,
      })
    const reauthMs = Number(get('connections.max.reauth.ms'))
    const scram = this.scramCredentials
    return {
      name: spec.name,
      host: spec.host,
      port: spec.port,
      tls,
      sasl: () =>
        new SaslAuthenticator({
          mechanisms,
          plainUsers: users,
          scramCredential: (user, mechanism) => scram.get(user, mechanism),
          reauthMs,
          maxUnauthenticatedFrameBytes: Number(get('sasl.server.max.receive.size')),
          now: () => performance.now(),
        }),
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.retentionTimer)
    this.waiters.notifyAll()
    this.groups.close()
    await this.server?.close()
    // No new cleaning rounds; a round in progress stops at its next slice once its log closes.
    const cleanerStopped = this.cleaner?.stop()
    let closed = false
    try {
      await this.topics.close()
      closed = true
    } finally {
      // Every log closed cleanly has synced all it holds: the journal is then redundant.
      this.journal?.close(closed)
    }
    await cleanerStopped
    // Before the data directory is released: another broker may take it over.
    this.producerIds.close()
    this.unlock()
    this.log.info('broker stopped')
  }

  private handlers(): AnyHandler[] {
    return [
      apiVersionsHandler(),
      metadataHandler(this),
      produceHandler(this),
      fetchHandler(this),
      listOffsetsHandler(this),
      createTopicsHandler(this),
      deleteTopicsHandler(this),
      createPartitionsHandler(this),
      describeConfigsHandler(this),
      initProducerIdHandler(this),
      findCoordinatorHandler(this),
      joinGroupHandler(this),
      syncGroupHandler(this),
      heartbeatHandler(this),
      leaveGroupHandler(this),
      offsetCommitHandler(this),
      offsetFetchHandler(this),
      describeGroupsHandler(this),
      listGroupsHandler(this),
      deleteGroupsHandler(this),
      offsetDeleteHandler(this),
      saslHandshakeHandler(),
      saslAuthenticateHandler(),
      describeUserScramCredentialsHandler(this),
      alterUserScramCredentialsHandler(this),
      describeClientQuotasHandler(this),
      alterClientQuotasHandler(this),
      describeAclsHandler(this),
      createAclsHandler(this),
      deleteAclsHandler(this),
    ]
  }

  private lock(): void {
    this.releaseLock = lockDataDir(this.dataDir)
  }

  private unlock(): void {
    this.releaseLock()
  }

  private loadClusterId(): string {
    const path = join(this.dataDir, 'meta.properties')
    if (existsSync(path)) {
      const match = /^cluster\.id=(.+)$/m.exec(readFileSync(path, 'utf8'))
      if (match !== null) return match[1].trim()
    }
    const id = randomBytes(16).toString('base64url')
    writeFileSync(path, `# written by cortado broker\nversion=1\ncluster.id=${id}\nnode.id=${this.nodeId}\n`)
    return id
  }
}

/** The client quotas' rates (quota.window.*), with the throttles they give counted in the metrics. */
function createQuotaManager(config: BrokerConfig, store: ClientQuotaStore, registry: Registry): QuotaManager {
  const throttled = new prom.Counter({
    name: 'cortado_broker_quota_throttled_total',
    help: 'Responses throttled for a client quota (KIP-219), by quota',
    labelNames: ['quota'],
    registers: [registry],
  })
  const throttleSeconds = new prom.Counter({
    name: 'cortado_broker_quota_throttle_seconds_total',
    help: 'Throttle time given to clients over their quotas, by quota',
    labelNames: ['quota'],
    registers: [registry],
  })
  return new QuotaManager({
    windowMs: config.number('quota.window.size.seconds') * 1000,
    windows: config.number('quota.window.num'),
    quotas: (entity) => store.get(entity),
    version: () => store.version,
    now: () => performance.now(),
    onThrottle: (quota, ms) => {
      throttled.inc({ quota })
      throttleSeconds.inc({ quota }, ms / 1000)
    },
  })
}
