// The broker's SCRAM credentials, durable across restarts, as Kafka keeps them in its metadata
// (set by AlterUserScramCredentials, listed by DescribeUserScramCredentials, read by SCRAM
// authentication). The file holds no password, only what RFC 5802 lets a server keep: salt,
// iterations, StoredKey and ServerKey, base64. Still, with it an attacker can impersonate the
// broker to clients or run a dictionary attack, so it is mode 0600.
//
// File: <data dir>/scram-credentials.json, replaced atomically and durably (src/util/durable-file.ts)
// before a change is acknowledged.
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { UnacceptableCredentialError } from './sasl-errors.ts'
import { type ScramCredential, type ScramMechanism, SCRAM_MECHANISMS, checkScramCredential } from './scram.ts'
import { writeFileDurably } from '../../util/durable-file.ts'

export const SCRAM_CREDENTIALS_FILE = 'scram-credentials.json'
const FORMAT = 1

/** The credentials file exists but cannot be trusted; the broker should not start on a guess. */
export class ScramCredentialFileError extends Error {
  readonly code = 'CORRUPT_SCRAM_CREDENTIALS'
  readonly path: string
  constructor(path: string, detail: string) {
    super(`${path} is corrupt: ${detail}`)
    this.name = 'ScramCredentialFileError'
    this.path = path
  }
}

type UserCredentials = ReadonlyMap<ScramMechanism, ScramCredential>
type Credentials = ReadonlyMap<string, UserCredentials>

interface StoredCredential {
  salt: string
  iterations: number
  storedKey: string
  serverKey: string
}

export class ScramCredentialStore {
  readonly path: string
  #credentials: Credentials
  #version = 0

  private constructor(path: string, credentials: Credentials) {
    this.path = path
    this.#credentials = credentials
  }

  /** Loads `<dataDir>/scram-credentials.json`; no file is an empty store. */
  static open(dataDir: string): ScramCredentialStore {
    const path = join(dataDir, SCRAM_CREDENTIALS_FILE)
    return new ScramCredentialStore(path, existsSync(path) ? load(path) : new Map())
  }

  /** Incremented by every change, so caches of credentials know when to refresh. */
  get version(): number {
    return this.#version
  }

  get(user: string, mechanism: ScramMechanism): ScramCredential | undefined {
    return this.#credentials.get(user)?.get(mechanism)
  }

  /** Adds or replaces the user's credential for its mechanism; durable when this returns. */
  set(user: string, credential: ScramCredential): void {
    if (user === '') throw new UnacceptableCredentialError('SCRAM user name must not be empty')
    checkScramCredential(credential)
    // A copy: the caller's buffers may be reused after this returns.
    const { mechanism, iterations, salt, storedKey, serverKey } = credential
    const copy = {
      mechanism,
      iterations,
      salt: copyOf(salt),
      storedKey: copyOf(storedKey),
      serverKey: copyOf(serverKey),
    }
    const mechanisms = new Map(this.#credentials.get(user))
    mechanisms.set(credential.mechanism, copy)
    this.#commit(new Map(this.#credentials).set(user, mechanisms))
  }

  /** Removes the user's credential for the mechanism; false (and no write) if there was none. */
  delete(user: string, mechanism: ScramMechanism): boolean {
    const current = this.#credentials.get(user)
    if (current?.has(mechanism) !== true) return false
    const mechanisms = new Map(current)
    mechanisms.delete(mechanism)
    const next = new Map(this.#credentials)
    if (mechanisms.size === 0) next.delete(user)
    else next.set(user, mechanisms)
    this.#commit(next)
    return true
  }

  /** Mechanisms and iterations per user (never keys), sorted; `users` limits it to those that have credentials. */
  describe(users?: string[]): Map<string, { mechanism: ScramMechanism; iterations: number }[]> {
    const names = users === undefined ? [...this.#credentials.keys()] : users.filter((u) => this.#credentials.has(u))
    const result = new Map<string, { mechanism: ScramMechanism; iterations: number }[]>()
    for (const user of [...new Set(names)].sort()) result.set(user, this.#describeUser(user))
    return result
  }

  #describeUser(user: string): { mechanism: ScramMechanism; iterations: number }[] {
    const mechanisms = this.#credentials.get(user) ?? new Map<ScramMechanism, ScramCredential>()
    return SCRAM_MECHANISMS.filter((m) => mechanisms.has(m)).map((mechanism) => ({
      mechanism,
      iterations: mechanisms.get(mechanism)?.iterations ?? 0,
    }))
  }

  /** Writes first, then swaps: if the write fails, memory still matches the file. */
  #commit(next: Credentials): void {
    writeFileDurably(this.path, serialize(next))
    this.#credentials = next
    this.#version++
  }
}

function serialize(credentials: Credentials): string {
  const users = [...credentials.keys()].sort().map((user) => [user, serializeUser(credentials.get(user))])
  // fromEntries defines own properties, so a user named "__proto__" is stored like any other.
  return JSON.stringify({ format: FORMAT, users: Object.fromEntries(users) as unknown }, null, 2) + '\n'
}

function serializeUser(mechanisms: UserCredentials | undefined): Record<string, StoredCredential> {
  const entries = [...(mechanisms ?? new Map<ScramMechanism, ScramCredential>()).values()].map((c) => [
    c.mechanism,
    {
      salt: c.salt.toString('base64'),
      iterations: c.iterations,
      storedKey: c.storedKey.toString('base64'),
      serverKey: c.serverKey.toString('base64'),
    },
  ])
  return Object.fromEntries(entries) as Record<string, StoredCredential>
}

function load(path: string): Credentials {
  let doc: unknown
  try {
    doc = JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    throw new ScramCredentialFileError(path, `not valid JSON (${(e as Error).message})`)
  }
  if (!isObject(doc) || doc.format !== FORMAT || !isObject(doc.users))
    throw new ScramCredentialFileError(path, `expected {"format": ${FORMAT}, "users": {...}}`)
  const credentials = new Map<string, UserCredentials>()
  for (const [user, mechanisms] of Object.entries(doc.users)) credentials.set(user, loadUser(path, user, mechanisms))
  return credentials
}

function loadUser(path: string, user: string, doc: unknown): UserCredentials {
  if (user === '' || !isObject(doc) || Object.keys(doc).length === 0)
    throw new ScramCredentialFileError(path, `bad entry for user ${JSON.stringify(user)}`)
  const mechanisms = new Map<ScramMechanism, ScramCredential>()
  for (const [mechanism, stored] of Object.entries(doc)) {
    const credential = loadCredential(mechanism, stored)
    if (credential === undefined)
      throw new ScramCredentialFileError(path, `bad ${mechanism} credential for user ${JSON.stringify(user)}`)
    mechanisms.set(credential.mechanism, credential)
  }
  return mechanisms
}

/** The credential, or undefined if any field is missing, mistyped or inconsistent. */
function loadCredential(mechanism: string, doc: unknown): ScramCredential | undefined {
  if (!SCRAM_MECHANISMS.includes(mechanism as ScramMechanism) || !isObject(doc)) return undefined
  const { salt, iterations, storedKey, serverKey } = doc
  if (typeof iterations !== 'number' || ![salt, storedKey, serverKey].every(isBase64)) return undefined
  const credential: ScramCredential = {
    mechanism: mechanism as ScramMechanism,
    salt: Buffer.from(salt as string, 'base64'),
    iterations,
    storedKey: Buffer.from(storedKey as string, 'base64'),
    serverKey: Buffer.from(serverKey as string, 'base64'),
  }
  try {
    checkScramCredential(credential)
  } catch {
    return undefined
  }
  return credential
}

function copyOf(b: Buffer): Buffer {
  return Buffer.from(b)
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function isBase64(v: unknown): boolean {
  return typeof v === 'string' && Buffer.from(v, 'base64').toString('base64') === v
}
