// Who a request comes from (authentication: HTTP Basic with a user's password, or Bearer with an
// API token) and whether they may do what it asks (authorization: a role on the database, or
// cluster admin). Users and tokens are read from the metadata view, so every router agrees and a
// change applies everywhere as soon as each router has read it.
//
// A password check runs scrypt (tens of milliseconds, by design), far too slow for every request
// of a client that sends Basic credentials each time. A successful check is remembered under the
// SHA-256 of the name and password, for as long as the user's record is unchanged (a new password,
// new roles or a deletion replaces the record, and the remembered check no longer matches it).
import { DbError } from '../errors.ts'
import {
  parseToken,
  type Principal,
  type Role,
  roleAllows,
  sha256,
  type TokenRecord,
  type UserRecord,
  verifyPassword,
} from './users.ts'

export interface AccessView {
  users: ReadonlyMap<string, UserRecord>
  tokens: ReadonlyMap<string, TokenRecord>
}

/** What a request needs: any authenticated principal, a role on a database, or cluster admin. */
export type Need = { kind: 'authenticated' } | { kind: 'database'; db: string; role: Role } | { kind: 'cluster' }

/** The principal of every request when authentication is off (`--insecure`). */
export const ANONYMOUS: Principal = { name: 'anonymous', admin: true, roles: {} }

/** Bound on remembered password checks; the whole cache is dropped when it is reached. */
const MAX_REMEMBERED = 10_000

export interface AccessControlOptions {
  /** No authentication: every request is ANONYMOUS, a cluster admin. */
  open: boolean
  /** Called on every refused authentication, with the user name when one was given. */
  onUnauthenticated?: (reason: string, user: string | undefined) => void
  /** Called on every refusal of an authenticated principal. */
  onDenied?: (principal: Principal, need: Need) => void
}

export class AccessControl {
  readonly open: boolean
  readonly #view: AccessView
  readonly #options: AccessControlOptions
  readonly #checked = new Map<string, UserRecord>()

  constructor(view: AccessView, options: AccessControlOptions) {
    this.#view = view
    this.#options = options
    this.open = options.open
  }

  /** The principal of a request's Authorization header; UNAUTHENTICATED if it is missing or wrong. */
  async authenticate(authorization: string | undefined): Promise<Principal> {
    return this.authenticateNow(authorization) ?? this.#checkPassword(basicCredentials(authorization))
  }

  /**
   * The principal, or UNAUTHENTICATED, when that can be told at once; undefined when it takes a
   * password check (a Basic password not checked before): then `authenticate`.
   */
  authenticateNow(authorization: string | undefined): Principal | undefined {
    if (this.open) return ANONYMOUS
    if (authorization === undefined) return this.#refuse('no credentials', undefined)
    const space = authorization.indexOf(' ')
    const scheme = authorization.slice(0, space < 0 ? undefined : space).toLowerCase()
    if (scheme === 'bearer') return this.#bearer(authorization.slice(space + 1).trim())
    if (scheme !== 'basic') return this.#refuse(`unsupported authorization scheme ${scheme}`, undefined)
    const credentials = basicCredentials(authorization)
    if (credentials === undefined) return this.#refuse('malformed Basic credentials', undefined)
    const user = this.#view.users.get(credentials.name)
    if (user === undefined || this.#checked.get(rememberedAs(credentials)) !== user) return undefined
    return { name: user.name, admin: user.admin, roles: user.roles }
  }

  /** Throws FORBIDDEN unless the principal may do what `need` names. */
  authorize(principal: Principal, need: Need): void {
    if (allows(principal, need)) return
    this.#options.onDenied?.(principal, need)
    throw new DbError('FORBIDDEN', `${principal.name} may not ${describeNeed(need)}`)
  }

  /** Checks a Basic password with scrypt (authenticateNow answered what needs no check). */
  async #checkPassword(credentials: BasicCredentials | undefined): Promise<Principal> {
    if (credentials === undefined) return this.#refuse('malformed Basic credentials', undefined)
    const { name, password } = credentials
    const user = this.#view.users.get(name)
    // An unknown user costs a hash too, so timing does not tell which users exist.
    if (user === undefined) {
      await verifyPassword(password, DUMMY_HASH)
      return this.#refuse('unknown user or wrong password', name)
    }
    if (!(await verifyPassword(password, user.password))) return this.#refuse('unknown user or wrong password', name)
    // The record may have changed during the check: remember it only against the one checked.
    if (this.#view.users.get(name) === user) {
      if (this.#checked.size >= MAX_REMEMBERED) this.#checked.clear()
      this.#checked.set(rememberedAs(credentials), user)
    }
    return { name, admin: user.admin, roles: user.roles }
  }

  #bearer(value: string): Principal {
    const parsed = parseToken(value)
    const token = parsed === undefined ? undefined : this.#view.tokens.get(parsed.id)
    if (parsed === undefined || token === undefined || token.sha256 !== sha256(parsed.secret))
      return this.#refuse('unknown or revoked token', undefined)
    const user = this.#view.users.get(token.user)
    if (user === undefined) return this.#refuse(`the token's user ${token.user} no longer exists`, token.user)
    return { name: user.name, admin: user.admin, roles: user.roles, via: `token ${token.id}` }
  }

  #refuse(reason: string, user: string | undefined): never {
    this.#options.onUnauthenticated?.(reason, user)
    throw new DbError('UNAUTHENTICATED', `authentication required: ${reason}`)
  }
}

interface BasicCredentials {
  name: string
  password: string
}

/** The name and password of a Basic Authorization header (undefined: not one, or malformed). */
function basicCredentials(authorization: string | undefined): BasicCredentials | undefined {
  if (authorization === undefined || !/^basic /i.test(authorization)) return undefined
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon <= 0) return undefined
  return { name: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

const rememberedAs = (c: BasicCredentials): string => `${c.name}\0${sha256(c.password)}`

export function allows(principal: Principal, need: Need): boolean {
  if (principal.admin || need.kind === 'authenticated') return true
  if (need.kind === 'cluster') return false
  return roleAllows(Object.hasOwn(principal.roles, need.db) ? principal.roles[need.db] : undefined, need.role)
}

function describeNeed(need: Need): string {
  if (need.kind === 'cluster') return 'administer the cluster (cluster admins only)'
  if (need.kind === 'database') return `${need.role === 'admin' ? 'administer' : need.role} database ${need.db}`
  return 'do this'
}

// A fixed hash to check unknown users' passwords against (salt and hash of no password).
const DUMMY_HASH = {
  algorithm: 'scrypt',
  N: 16384,
  r: 8,
  p: 1,
  salt: 'AAAAAAAAAAAAAAAAAAAAAA==',
  hash: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
} as const
