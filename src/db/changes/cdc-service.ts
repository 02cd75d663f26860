// The change-topic service (`cortado cdc`, and inside `cortado start`): follows the cluster
// metadata and runs one CdcPublisher per database (every database, or those named), starting a
// database's as soon as it is created.
import { type Registry } from 'prom-client'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { type Logger } from '../../util/log.ts'
import { MetadataLog } from '../metadata/metadata-log.ts'
import { CdcPublisher, createCdcMetrics } from './cdc-publisher.ts'

export interface CdcServiceOptions {
  bootstrap: string[]
  security?: KafkaSecurity
  /** Only these databases (default: all). */
  databases?: string[]
  replicationFactor: number
  log: Logger
  registry: Registry
  version: string
}

export class CdcService {
  readonly metadata: MetadataLog
  readonly publishers = new Map<string, CdcPublisher>()
  readonly #o: CdcServiceOptions
  readonly #metrics

  private constructor(o: CdcServiceOptions, metadata: MetadataLog) {
    this.#o = o
    this.metadata = metadata
    this.#metrics = createCdcMetrics(o.registry)
  }

  static async start(o: CdcServiceOptions): Promise<CdcService> {
    const metadata = new MetadataLog({
      bootstrap: o.bootstrap,
      security: o.security,
      clientId: 'cortado-cdc',
      replicationFactor: o.replicationFactor,
      onError: (e) => o.log.warn('metadata read error', { error: e.message }),
    })
    await metadata.start()
    const service = new CdcService(o, metadata)
    metadata.onChange(() => service.#follow())
    service.#follow()
    return service
  }

  /** Starts a publisher for each database (of those asked for) that has none yet. */
  #follow(): void {
    for (const db of this.metadata.view.databases.values()) {
      if (this.publishers.has(db.name)) continue
      if (this.#o.databases !== undefined && !this.#o.databases.includes(db.name)) continue
      const publisher = new CdcPublisher({
        bootstrap: this.#o.bootstrap,
        security: this.#o.security,
        db,
        replicationFactor: this.#o.replicationFactor,
        log: this.#o.log,
        metrics: this.#metrics,
        version: this.#o.version,
      })
      this.publishers.set(db.name, publisher)
      void publisher.start()
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.publishers.values()].map((p) => p.close()))
    await this.metadata.close()
  }
}
