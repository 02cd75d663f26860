// Kafka's client quotas as a pure module (no sockets, time injected): which quota applies to a
// connection (KIP-55's eight levels of user and client-id), the rate it is measured at (Kafka's
// Rate over a SampledStat), and how long a client over it is throttled (KIP-13, KIP-124,
// KIP-219). The store of the quotas themselves is quota-store.ts; AlterClientQuotas and
// DescribeClientQuotas (KIP-546) validate with the functions at the end.
//
// Followed from Apache Kafka: ClientQuotaManager (precedence, metric tags, throttle time),
// ClientRequestQuotaManager (request_percentage and its cap), QuotaUtils, Sensor, Rate, SampledStat,
// QuotaConfigs, ClientQuotaControlManager and ClientQuotasImage (validation and filter messages).

export const QUOTA_KEYS = ['producer_byte_rate', 'consumer_byte_rate', 'request_percentage'] as const
export type QuotaKey = (typeof QUOTA_KEYS)[number]
export type QuotaValues = Partial<Record<QuotaKey, number>>

/**
 * A quota entity as DescribeClientQuotas/AlterClientQuotas carry it (wire types 'user' and
 * 'client-id'): a present `null` is Kafka's `<default>` entity of that type, an absent (or
 * undefined) field is not part of the entity.
 */
export interface QuotaEntity {
  user?: string | null
  clientId?: string | null
}

/** The quotas set on exactly this entity, if any (ClientQuotaStore.get). */
export type QuotaLookup = (entity: QuotaEntity) => QuotaValues | undefined

/** The quota that applies to a connection, and the rate it is measured against. */
export interface QuotaMatch {
  /** The entity the quota is set on, as stored (`null` for a `<default>`). */
  entity: QuotaEntity
  bound: number
  /**
   * Whose traffic is measured together: `entity` with each `<default>` replaced by the
   * connection's own name. All connections with equal `sensor`s share one rate.
   */
  sensor: { user?: string; clientId?: string }
}

/** A bad argument to QuotaManager, or a quota the store must refuse (it keeps only valid ones). */
export class InvalidQuotaError extends Error {
  readonly code = 'INVALID_QUOTA'
  constructor(message: string) {
    super(message)
    this.name = 'InvalidQuotaError'
  }
}

// Most specific first, as ClientQuotaManager's precedence list:
// /config/users/<user>/clients/<client-id> ... /config/clients/<default>.
const LEVELS: readonly ((user: string, clientId: string) => QuotaEntity)[] = [
  (user, clientId) => ({ user, clientId }),
  (user) => ({ user, clientId: null }),
  (user) => ({ user }),
  (_, clientId) => ({ user: null, clientId }),
  () => ({ user: null, clientId: null }),
  () => ({ user: null }),
  (_, clientId) => ({ clientId }),
  () => ({ clientId: null }),
]

/**
 * The quota on `key` for a connection of `user` (the principal's name without `User:`,
 * ANONYMOUS when unauthenticated) and `clientId`: the first of the eight levels, most specific
 * first, whose entity has a value for `key` (each key resolves on its own, as Kafka has one
 * quota manager per quota type). Undefined when none does: the client is not limited.
 *
 * The sharing key: Kafka measures a client on the sensor named by its quota metric tags, which
 * DefaultQuotaCallback.quotaMetricTags computes from the matched level: a level's user tag is the
 * client's own (sanitized) user when the level names a user *or the <default> user*, else empty;
 * likewise the client-id tag. So a quota on user alice is one rate for all her client ids (tags
 * alice, ""), while a quota on the <default> user is a separate rate per user (tags bob, "" for
 * bob): a default is a template applied to each user or client id, not a pool they share.
 */
export function resolveQuota(
  quotas: QuotaLookup,
  user: string,
  clientId: string,
  key: QuotaKey,
): QuotaMatch | undefined {
  for (const level of LEVELS) {
    const entity = level(user, clientId)
    const bound = quotas(entity)?.[key]
    if (typeof bound === 'number') return { entity, bound, sensor: sensorOf(entity, user, clientId) }
  }
  return undefined
}

function sensorOf(entity: QuotaEntity, user: string, clientId: string): QuotaMatch['sensor'] {
  const sensor: QuotaMatch['sensor'] = {}
  if (entity.user !== undefined) sensor.user = entity.user ?? user
  if (entity.clientId !== undefined) sensor.clientId = entity.clientId ?? clientId
  return sensor
}

/** One string per entity, `<default>` and absent told apart (a name may be any string). */
export function quotaEntityKey(entity: QuotaEntity): string {
  return JSON.stringify([
    entity.user === undefined ? 0 : entity.user,
    entity.clientId === undefined ? 0 : entity.clientId,
  ])
}

// Kafka's ClientQuotaManagerConfig: quota.window.size.seconds 1, quota.window.num 11 (10 whole
// windows and the current one), sensors dropped after an hour unused, checked every 30 s (Metrics'
// ExpireSensorTask).
const DEFAULT_WINDOW_MS = 1000
const DEFAULT_WINDOWS = 11
const INACTIVE_SENSOR_EXPIRY_MS = 3600_000
const SENSOR_SWEEP_MS = 30_000
// throttle_time_ms is an int32 on the wire.
const MAX_THROTTLE_MS = 0x7fffffff

export interface QuotaManagerOptions {
  /** quota.window.size.seconds * 1000; default 1000. */
  windowMs?: number
  /** quota.window.num; default 11. */
  windows?: number
  quotas: QuotaLookup
  /** Changes whenever `quotas` may answer differently (ClientQuotaStore.version). */
  version: () => number
  /** Milliseconds on any monotonic clock. */
  now: () => number
  /** Told of every throttle a record gives (the broker's metrics). */
  onThrottle?: (key: QuotaKey, ms: number) => void
}

/**
 * Measures each client's rates against its quotas and answers the throttle times, as Kafka's
 * ClientQuotaManager (one per key here, sharing the quota lookup). Quota changes apply from the
 * next record; a sensor keeps its samples when only the bound changes, as Kafka updates the
 * metric's config in place.
 */
export class QuotaManager {
  readonly windowMs: number
  readonly windows: number
  readonly #quotas: QuotaLookup
  readonly #version: () => number
  readonly #now: () => number
  readonly #onThrottle: ((key: QuotaKey, ms: number) => void) | undefined
  readonly #sensors = new Map<string, WindowedRate>()
  // Resolution per (key, user, client id), valid for one version of the quotas.
  readonly #resolved = new Map<string, QuotaMatch | null>()
  #resolvedVersion: number | undefined
  #lastSweep: number | undefined

  constructor(options: QuotaManagerOptions) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
    this.windows = options.windows ?? DEFAULT_WINDOWS
    if (!(this.windowMs > 0) || !Number.isFinite(this.windowMs))
      throw new InvalidQuotaError(`quota window must be a positive number of ms, not ${this.windowMs}`)
    if (!Number.isInteger(this.windows) || this.windows < 1)
      throw new InvalidQuotaError(`quota.window.num must be an integer of at least 1, not ${this.windows}`)
    this.#quotas = options.quotas
    this.#version = options.version
    this.#now = options.now
    this.#onThrottle = options.onThrottle
  }

  /**
   * Records `value` (bytes; for request_percentage, milliseconds of request handler time) against
   * the client's quota and returns how long to throttle it, in whole ms: 0 within the quota, and 0
   * without recording anything when no quota applies. Recorded even when over the quota (Kafka
   * does: the bytes were produced, the handler time spent).
   */
  record(key: QuotaKey, user: string, clientId: string, value: number): number {
    checkValue(value)
    const now = this.#now()
    this.#sweep(now)
    const match = this.#match(key, user, clientId)
    if (match === undefined) return 0
    const name = sensorName(key, match)
    let sensor = this.#sensors.get(name)
    if (sensor === undefined) this.#sensors.set(name, (sensor = new WindowedRate(this.windowMs, this.windows)))
    sensor.record(scaled(key, value), now)
    const ms = this.#throttleMs(key, sensor.measure(now), match.bound)
    if (ms > 0) this.#onThrottle?.(key, ms)
    return ms
  }

  /**
   * Takes back `value` recorded by `record` (same arguments) by recording its negative, as Kafka's
   * unrecordQuotaSensor: a fetch throttled is answered empty, so its bytes were never sent. Does
   * nothing if no sensor holds the client's rate (no quota, or it changed level since).
   */
  unrecord(key: QuotaKey, user: string, clientId: string, value: number): void {
    checkValue(value)
    const match = this.#match(key, user, clientId)
    if (match === undefined) return
    this.#sensors.get(sensorName(key, match))?.record(-scaled(key, value), this.#now())
  }

  /**
   * The most a client may take in one go without being throttled: its bound times the window the
   * rate is measured over at least (Kafka's getMaxValueInQuotaWindow, which caps a fetch's size so
   * that a consumer over a small quota still gets records, one quota window's worth at a time).
   * Infinity without a quota.
   */
  maxValueInWindow(key: QuotaKey, user: string, clientId: string): number {
    const match = this.#match(key, user, clientId)
    return match === undefined ? Infinity : (match.bound * (this.windows - 1) * this.windowMs) / 1000
  }

  /** Sensors alive (some client recorded against them within the hour): for metrics and tests. */
  get sensorCount(): number {
    return this.#sensors.size
  }

  #match(key: QuotaKey, user: string, clientId: string): QuotaMatch | undefined {
    const version = this.#version()
    if (version !== this.#resolvedVersion) {
      this.#resolved.clear()
      this.#resolvedVersion = version
    }
    const cacheKey = JSON.stringify([key, user, clientId])
    let match = this.#resolved.get(cacheKey)
    if (match === undefined)
      this.#resolved.set(cacheKey, (match = resolveQuota(this.#quotas, user, clientId, key) ?? null))
    return match ?? undefined
  }

  /**
   * QuotaUtils.throttleTime: with O the measured rate, T the bound and W the window the rate was
   * measured over, waiting X such that O * W / (W + X) = T gives X = (O - T) / T * W. Kafka caps
   * only the request quota's throttle, at one window (ClientRequestQuotaManager.maxThrottleTimeMs).
   */
  #throttleMs(key: QuotaKey, measured: { rate: number; windowMs: number }, bound: number): number {
    if (measured.rate <= bound) return 0
    const ms = Math.round(((measured.rate - bound) / bound) * measured.windowMs)
    return Math.min(ms, key === 'request_percentage' ? this.windowMs : MAX_THROTTLE_MS)
  }

  /** Drops sensors unused for an hour; the resolution cache goes too, so neither grows without bound. */
  #sweep(now: number): void {
    if (this.#lastSweep !== undefined && now - this.#lastSweep < SENSOR_SWEEP_MS) return
    this.#lastSweep = now
    for (const [name, sensor] of this.#sensors)
      if (now - sensor.lastRecordMs > INACTIVE_SENSOR_EXPIRY_MS) this.#sensors.delete(name)
    this.#resolved.clear()
  }
}

/** One sensor per key and sharing key (an absent user or client id is null, apart from any name). */
function sensorName(key: QuotaKey, match: QuotaMatch): string {
  return JSON.stringify([key, match.sensor.user ?? null, match.sensor.clientId ?? null])
}

function checkValue(value: number): void {
  if (!Number.isFinite(value) || value < 0)
    throw new InvalidQuotaError(`a quota records a finite non-negative amount, not ${value}`)
}

/**
 * Handler time in ms as Kafka's request quota counts it: percent of one thread's second
 * (nanos * 100 / 1e9), so over a window measured in seconds, 1000 ms per second is 100.
 */
function scaled(key: QuotaKey, value: number): number {
  return key === 'request_percentage' ? value / 10 : value
}

interface Sample {
  startMs: number
  lastEventMs: number
  value: number
}

/**
 * Kafka's Rate over a WindowedSum (SampledStat): `windows` samples of `windowMs` each (one more
 * kept, so that purging an old sample never empties the window being measured), a sample unused
 * for `windows` windows is reset, and the rate is the sum of the samples over the time since the
 * oldest sample began, at least (windows - 1) whole windows (Rate.windowSize): a first burst is
 * measured as if the client had been idle before it, not over the few ms it took.
 */
class WindowedRate {
  readonly #windowMs: number
  readonly #windows: number
  readonly #samples: Sample[] = []
  #current = 0
  lastRecordMs = 0

  constructor(windowMs: number, windows: number) {
    this.#windowMs = windowMs
    this.#windows = windows
  }

  record(value: number, now: number): void {
    this.lastRecordMs = now
    let sample = this.#currentSample(now)
    if (now - sample.startMs >= this.#windowMs) sample = this.#advance(now)
    sample.value += value
    sample.lastEventMs = now
  }

  /** The rate per second, and the window (ms) it was measured over. */
  measure(now: number): { rate: number; windowMs: number } {
    this.#purge(now)
    const sum = this.#samples.reduce((total, s) => total + s.value, 0)
    const windowMs = this.#windowSize(now)
    return { rate: sum / (windowMs / 1000), windowMs }
  }

  #currentSample(now: number): Sample {
    if (this.#samples.length === 0) this.#samples.push(newSample(now))
    return this.#samples[this.#current]
  }

  #advance(now: number): Sample {
    this.#current = (this.#current + 1) % (this.#windows + 1)
    if (this.#current >= this.#samples.length) this.#samples.push(newSample(now))
    else Object.assign(this.#samples[this.#current], newSample(now))
    return this.#samples[this.#current]
  }

  #purge(now: number): void {
    const expireAge = this.#windows * this.#windowMs
    for (const s of this.#samples) if (now - s.lastEventMs >= expireAge) Object.assign(s, newSample(now))
  }

  /** Rate.windowSize; at least 1 ms (older Kafka's guard) so that one window of one sample never divides by 0. */
  #windowSize(now: number): number {
    const oldest = Math.min(...this.#samples.map((s) => s.startMs), now)
    let elapsed = now - oldest
    const fullWindows = Math.floor(elapsed / this.#windowMs)
    const minFullWindows = this.#windows - 1
    if (fullWindows < minFullWindows) elapsed += (minFullWindows - fullWindows) * this.#windowMs
    return Math.max(elapsed, 1)
  }
}

function newSample(now: number): Sample {
  return { startMs: now, lastEventMs: now, value: 0 }
}

/** An AlterClientQuotas entry's entity, as the wire carries it. */
export interface QuotaEntityComponent {
  entityType: string
  entityName: string | null
}

/**
 * Why AlterClientQuotas must refuse `key` set to `value` (null: removed), or undefined. Kafka's
 * messages where it has one (ClientQuotaControlManager): an unknown key, a byte rate not a whole
 * number (a LONG config; Kafka's 1e-6 tolerance). Kafka accepts zero and non-finite values (and
 * calls a negative byte rate not a Long); here they are refused as not greater than 0 or not
 * finite, since a bound of 0 or less throttles by an infinite or negative time.
 */
export function validateQuotaOp(key: string, value: number | null): string | undefined {
  if (!(QUOTA_KEYS as readonly string[]).includes(key)) return `Invalid configuration key ${key}`
  if (value === null) return undefined
  if (!Number.isFinite(value)) return `Configuration ${key} must be a finite number`
  if (value <= 0) return `Configuration ${key} must be greater than 0`
  if (key !== 'request_percentage' && Math.abs(Math.trunc(value + 1e-6) - value) > 1e-6)
    return `Configuration ${key} must be a Long value`
  return undefined
}

/**
 * Why AlterClientQuotas must refuse this entity, or undefined: at least one component, each
 * 'user' or 'client-id' at most once, a name not empty (null is `<default>`). Kafka's messages;
 * Kafka also knows 'ip' (connection_creation_rate), which is not supported here.
 */
export function validateEntity(entries: QuotaEntityComponent[]): string | undefined {
  if (entries.length === 0) return 'Invalid empty client quota entity'
  const seen = new Set<string>()
  for (const { entityType, entityName } of entries) {
    if (seen.has(entityType)) return `Invalid empty client quota entity, duplicate entity entry ${entityType}`
    seen.add(entityType)
    if (entityType !== 'user' && entityType !== 'client-id') return `Unhandled client quota entity type: ${entityType}`
    if (entityName === '') return `Empty ${entityType} not supported`
  }
  return undefined
}

/** The wire's entity components as a QuotaEntity (validateEntity first: other types are ignored). */
export function toQuotaEntity(entries: QuotaEntityComponent[]): QuotaEntity {
  const entity: QuotaEntity = {}
  for (const { entityType, entityName } of entries) {
    if (entityType === 'user') entity.user = entityName
    else if (entityType === 'client-id') entity.clientId = entityName
  }
  return entity
}

/** A QuotaEntity as the wire's components, user first. */
export function entityComponents(entity: QuotaEntity): QuotaEntityComponent[] {
  const out: QuotaEntityComponent[] = []
  if (entity.user !== undefined) out.push({ entityType: 'user', entityName: entity.user })
  if (entity.clientId !== undefined) out.push({ entityType: 'client-id', entityName: entity.clientId })
  return out
}

/** DescribeClientQuotas' match types. */
export const MatchType = { EXACT: 0, DEFAULT: 1, SPECIFIED: 2 } as const

/** A DescribeClientQuotas filter component as the wire carries it. */
export interface QuotaFilterComponent {
  entityType: string
  matchType: number
  match: string | null
}

/**
 * Why DescribeClientQuotas must refuse this filter, or undefined; Kafka's messages
 * (ClientQuotasImage.describe). Kafka answers an unknown entity type with UNSUPPORTED_VERSION,
 * the rest with INVALID_REQUEST.
 */
export function validateQuotaFilter(components: QuotaFilterComponent[]): string | undefined {
  const seen = new Set<string>()
  for (const { entityType, matchType, match } of components) {
    if (entityType === '') return 'Invalid empty entity type.'
    if (seen.has(entityType)) return `Entity type ${entityType} cannot appear more than once in the filter.`
    seen.add(entityType)
    if (entityType !== 'user' && entityType !== 'client-id') return `Unsupported entity type ${entityType}`
    const error = matchError(matchType, match)
    if (error !== undefined) return error
  }
  return undefined
}

function matchError(matchType: number, match: string | null): string | undefined {
  if (matchType === MatchType.EXACT)
    return match === null ? 'Request specified MATCH_TYPE_EXACT, but set match string to null.' : undefined
  if (matchType === MatchType.DEFAULT)
    return match !== null ? 'Request specified MATCH_TYPE_DEFAULT, but also specified a match string.' : undefined
  if (matchType === MatchType.SPECIFIED)
    return match !== null ? 'Request specified MATCH_TYPE_SPECIFIED, but also specified a match string.' : undefined
  return `Unknown match type ${matchType}`
}
