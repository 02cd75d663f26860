// The database's users and API tokens, as the metadata log stores them:
//   user/<name>   → UserRecord   (a password stored as a salted scrypt hash, roles per database,
//                                 and whether the user is a cluster admin)
//   token/<id>    → TokenRecord  (an API token's SHA-256: tokens are 256 random bits, so a fast
//                                 hash is enough; the token itself is shown once, at creation)
// Roles per database: read (documents and definitions), write (read, and documents), admin
// (write, and schema versions). A cluster admin may do everything, users and databases included.
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto'
import { DbError } from '../errors.ts'
import { NAME_PATTERN } from '../metadata/model.ts'

export type Role = 'read' | 'write' | 'admin'
export const ROLES: readonly Role[] = ['read', 'write', 'admin']

/** scrypt's parameters, stored with each hash so they can be raised later without breaking old ones. */
export interface PasswordHash {
  algorithm: 'scrypt'
  N: number
  r: number
  p: number
  salt: string
  hash: string
}

export interface UserRecord {
  name: string
  password: PasswordHash
  /** A cluster admin: users, databases, placements. */
  admin: boolean
  /** Role per database name. */
  roles: Record<string, Role>
}

export interface TokenRecord {
  id: string
  user: string
  /** SHA-256 of the token's secret part, hex. */
  sha256: string
  description: string
  createdAt: number
}

/** Who made a request. `via` names the token when one was used. */
export interface Principal {
  name: string
  admin: boolean
  roles: Readonly<Record<string, Role>>
  via?: string
}

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 32 }
export const MIN_PASSWORD_LENGTH = 8
const MAX_PASSWORD_LENGTH = 1024
const TOKEN_PREFIX = 'ctd_'

function scryptAsync(password: string, salt: Buffer, N: number, r: number, p: number): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, SCRYPT.keyLength, { N, r, p, maxmem: 256 * N * r }, (error, key) =>
      error === null ? resolve(key) : reject(error),
    ),
  )
}

export async function hashPassword(password: string): Promise<PasswordHash> {
  const salt = randomBytes(16)
  const key = await scryptAsync(password, salt, SCRYPT.N, SCRYPT.r, SCRYPT.p)
  return {
    algorithm: 'scrypt',
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
    salt: salt.toString('base64'),
    hash: key.toString('base64'),
  }
}

export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  if (password.length > MAX_PASSWORD_LENGTH) return false
  const expected = Buffer.from(stored.hash, 'base64')
  const key = await scryptAsync(password, Buffer.from(stored.salt, 'base64'), stored.N, stored.r, stored.p)
  return key.length === expected.length && timingSafeEqual(key, expected)
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex')

/** A new token `ctd_<id>_<secret>` and what is stored of it. */
export function newToken(user: string, description: string, now: number): { token: string; record: TokenRecord } {
  const id = randomBytes(6).toString('hex')
  const secret = randomBytes(32).toString('base64url')
  return {
    token: `${TOKEN_PREFIX}${id}_${secret}`,
    record: { id, user, sha256: sha256(secret), description, createdAt: now },
  }
}

/** A token's id and secret, or undefined if the text is not shaped as one. */
export function parseToken(token: string): { id: string; secret: string } | undefined {
  const m = /^ctd_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$/.exec(token)
  return m === null ? undefined : { id: m[1], secret: m[2] }
}

/** A random password for generated credentials (24 characters of base64url: 144 bits). */
export const randomPassword = (): string => randomBytes(18).toString('base64url')

function invalid(message: string): never {
  throw new DbError('INVALID_USER', message)
}

export function checkUserName(name: string): void {
  if (!NAME_PATTERN.test(name)) invalid(`user name ${JSON.stringify(name)} must match ${NAME_PATTERN.source}`)
}

export function checkPassword(password: unknown): string {
  if (typeof password !== 'string' || password.length < MIN_PASSWORD_LENGTH || password.length > MAX_PASSWORD_LENGTH)
    invalid(`password must be a string of ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters`)
  return password
}

/** Validates `roles` of a user body: {db: read|write|admin}. */
export function checkRoles(roles: unknown): Record<string, Role> {
  if (roles === undefined) return {}
  if (typeof roles !== 'object' || roles === null || Array.isArray(roles))
    invalid('roles must be an object of database name to read, write or admin')
  const out: Record<string, Role> = {}
  for (const [db, role] of Object.entries(roles)) {
    if (!NAME_PATTERN.test(db)) invalid(`roles: database name ${JSON.stringify(db)} must match ${NAME_PATTERN.source}`)
    if (!ROLES.includes(role as Role)) invalid(`roles.${db} must be read, write or admin, got ${JSON.stringify(role)}`)
    out[db] = role as Role
  }
  return out
}

/** Whether `role` allows what `needed` names (admin ⊃ write ⊃ read). */
export const roleAllows = (role: Role | undefined, needed: Role): boolean =>
  role !== undefined && ROLES.indexOf(role) >= ROLES.indexOf(needed)
