// The controller at run time: feeds the state machine (controller-state.ts) every metadata record
// in log order and a clock tick every `tickMs`, and writes the records it decides on. Any number
// of controllers may run; the log makes one of them active (see controller-state.ts).
import { type Registry, Gauge } from 'prom-client'
import { type KafkaSecurity } from '../../client/kafka-security.ts'
import { type Logger } from '../../util/log.ts'
import { MetadataLog } from '../metadata/metadata-log.ts'
import { DEFAULT_NODE_SESSION_MS } from '../metadata/model.ts'
import {
  type ControllerAction,
  type ControllerConfig,
  type ControllerState,
  initialControllerState,
  isActive,
  step,
} from './controller-state.ts'

export const DEFAULT_CONTROLLER_CONFIG: ControllerConfig = {
  nodeSessionMs: DEFAULT_NODE_SESSION_MS,
  controllerSessionMs: 3000,
  controllerHeartbeatMs: 500,
  rereplicationDelayMs: 60_000,
  maxConcurrentMoves: 4,
  caughtUpScns: 100,
  // Off by default: each handoff pauses a partition's writes for a moment, so continuous moves are
  // the operator's choice (`--load-balancing on`); `cortado admin rebalance` works either way.
  loadBalancing: false,
  loadImbalanceFactor: 1.5,
  loadMinWritesPerSec: 20,
  loadSampleMs: 1000,
  loadSmoothingMs: 10_000,
  loadMoveCooldownMs: 60_000,
  loadReportMs: 2000,
}

export interface ControllerOptions {
  id: string
  bootstrap: string[]
  /** TLS and SASL for the connections to Kafka (default: plaintext, no authentication). */
  security?: KafkaSecurity
  log: Logger
  registry?: Registry
  config?: Partial<ControllerConfig>
  /** Clock tick (default 100 ms). */
  tickMs?: number
  replicationFactor?: number
  /**
   * How long a fetch waits at Kafka for new records (Kafka's fetch.max.wait.ms). Apache Kafka
   * answers a waiting fetch as soon as records arrive; a Kafka that holds it for the whole wait
   * (librdkafka's mock cluster) adds up to this much to every write: shorten it there.
   */
  fetchMaxWaitMs?: number
}

export class Controller {
  readonly id: string
  readonly metadata: MetadataLog
  #state: ControllerState
  readonly #config: ControllerConfig
  readonly #log: Logger
  #timer: NodeJS.Timeout | undefined

  private constructor(options: ControllerOptions) {
    this.id = options.id
    this.#log = options.log
    this.#config = { ...DEFAULT_CONTROLLER_CONFIG, ...options.config }
    this.#state = initialControllerState(options.id)
    this.metadata = new MetadataLog({
      bootstrap: options.bootstrap,
      security: options.security,
      clientId: `cortado-controller-${options.id}`,
      replicationFactor: options.replicationFactor,
      onError: (e) => options.log.warn('metadata read error', { error: e.message }),
      maxWaitMs: options.fetchMaxWaitMs,
    })
    if (options.registry !== undefined) {
      const state = () => this.#state
      new Gauge({
        name: 'cortado_controller_active',
        help: '1 while this controller is the active one',
        registers: [options.registry],
        collect() {
          this.set(isActive(state()) ? 1 : 0)
        },
      })
      new Gauge({
        name: 'cortado_controller_epoch',
        help: 'Highest controller epoch read from the metadata log',
        registers: [options.registry],
        collect() {
          this.set(state().epoch)
        },
      })
    }
  }

  static async start(options: ControllerOptions): Promise<Controller> {
    const c = new Controller(options)
    // Every record, in log order, before the view-based listeners; the replay at start counts
    // as seen now (a node that died before the start is found dead one session later).
    c.metadata.onRecord((key, value) => c.#run({ kind: 'record', key, value, now: Date.now() }))
    await c.metadata.start()
    c.#timer = setInterval(() => c.#run({ kind: 'tick', now: Date.now() }), options.tickMs ?? 100)
    options.log.info('controller started', { id: options.id, config: c.#config })
    return c
  }

  get active(): boolean {
    return isActive(this.#state)
  }

  get epoch(): number {
    return this.#state.epoch
  }

  #run(event: Parameters<typeof step>[1]): void {
    const { state, actions } = step(this.#state, event, this.#config)
    this.#state = state
    for (const a of actions) this.#perform(a)
  }

  #perform(a: ControllerAction): void {
    if (a.kind === 'log') {
      this.#log[a.level](a.msg, { controller: this.id, ...a.fields })
      return
    }
    this.metadata
      .send(a.key, a.value)
      .catch((error: unknown) => this.#log.warn('controller write failed', { key: a.key, error: String(error) }))
  }

  async close(): Promise<void> {
    clearInterval(this.#timer)
    await this.metadata.close()
  }
}
