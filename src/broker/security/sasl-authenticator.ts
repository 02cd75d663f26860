// The SASL exchange of one connection on a SASL_PLAINTEXT or SASL_SSL listener, as Kafka's
// SaslServerAuthenticator runs it in its network layer, before any request reaches a handler:
//
//   handshake ──SaslHandshake(mechanism)──▶ authenticate ──tokens…──▶ authenticated
//        ▲                                                                │
//        └─────────── re-authentication (KIP-368): SaslHandshake v1+ ─────┘
//
// - Before authentication only ApiVersions and SaslHandshake are served; then only
//   SaslAuthenticate (or, after SaslHandshake v0, bare size-prefixed SASL tokens, which
//   kafka-python sends). Anything else closes the connection, as Kafka does.
// - A failed authentication is answered (SASL_AUTHENTICATION_FAILED with a message, or nothing
//   for bare tokens) and the connection closed; other connections are not affected.
// - With connections.max.reauth.ms, a session lasts that long (told to SaslAuthenticate v1+
//   clients as session_lifetime_ms); a request after it expires closes the connection unless it
//   re-authenticates, which must keep the same mechanism and principal.
import { ErrorCode } from '../../protocol/errors.ts'
import { type SaslAuthenticateResponse } from '../../protocol/messages/sasl-authenticate-response.ts'
import { type SaslHandshakeResponse } from '../../protocol/messages/sasl-handshake-response.ts'
import { ApiKey } from '../../protocol/apis.ts'
import { verifyPlain } from './plain.ts'
import { SaslAuthenticationError } from './sasl-errors.ts'
import { type ScramCredential, type ScramMechanism, ScramServer } from './scram.ts'

export interface SaslSettings {
  /** Enabled mechanisms (sasl.enabled.mechanisms), in the order offered. */
  readonly mechanisms: readonly string[]
  /** PLAIN's users and passwords (from the listener's JAAS config). */
  readonly plainUsers: ReadonlyMap<string, string>
  readonly scramCredential: (user: string, mechanism: ScramMechanism) => ScramCredential | undefined
  /** connections.max.reauth.ms; 0: sessions do not expire. */
  readonly reauthMs: number
  /** sasl.server.max.receive.size: the largest frame read before authentication. */
  readonly maxUnauthenticatedFrameBytes: number
  readonly now: () => number
}

type State =
  | { kind: 'handshake' }
  | { kind: 'authenticate'; mechanism: string; bareTokens: boolean; scram: ScramServer | undefined }
  | { kind: 'authenticated'; mechanism: string; principal: string; expiresAt: number }
  | {
      kind: 'reauthenticate'
      mechanism: string
      scram: ScramServer | undefined
      principal: string
      expiresAt: number
    }

/** What the connection does after an exchange step: answer, then maybe close. */
export interface SaslStep<R> {
  readonly response: R
  /** Set: close the connection once the response is written, for this reason. */
  readonly close?: string
}

const BEFORE_AUTH = new Set<number>([ApiKey.ApiVersions, ApiKey.SaslHandshake])

export class SaslAuthenticator {
  readonly #settings: SaslSettings
  #state: State = { kind: 'handshake' }

  constructor(settings: SaslSettings) {
    this.#settings = settings
  }

  get maxUnauthenticatedFrameBytes(): number {
    return this.#settings.maxUnauthenticatedFrameBytes
  }

  /** After SaslHandshake v0 the client sends bare SASL tokens instead of SaslAuthenticate requests. */
  get expectsBareToken(): boolean {
    return this.#state.kind === 'authenticate' && this.#state.bareTokens
  }

  /** `User:<name>` once authenticated (kept through a re-authentication), else undefined. */
  get principal(): string | undefined {
    const s = this.#state
    return s.kind === 'authenticated' || s.kind === 'reauthenticate' ? s.principal : undefined
  }

  /** Whether a request of `apiKey` may be served now: undefined if so, else why the connection closes. */
  gate(apiKey: number, apiName: string): string | undefined {
    const s = this.#state
    if (s.kind === 'handshake')
      return BEFORE_AUTH.has(apiKey) ? undefined : `${apiName} request before SASL authentication`
    if (s.kind === 'authenticate')
      return apiKey === ApiKey.SaslAuthenticate ? undefined : `${apiName} request during SASL authentication`
    if (apiKey === ApiKey.SaslHandshake || apiKey === ApiKey.SaslAuthenticate) return undefined
    if (this.#settings.reauthMs > 0 && this.#settings.now() >= s.expiresAt)
      return `SASL session of ${s.principal} expired (connections.max.reauth.ms=${this.#settings.reauthMs}) without re-authentication`
    return undefined
  }

  handshake(version: number, mechanism: string): SaslStep<SaslHandshakeResponse> {
    const mechanisms = [...this.#settings.mechanisms]
    const s = this.#state
    if (s.kind === 'authenticate' || s.kind === 'reauthenticate')
      return {
        response: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms },
        close: 'SaslHandshake during a SASL exchange',
      }
    if (!mechanisms.includes(mechanism))
      return {
        response: { errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM, mechanisms },
        close: `SASL mechanism ${JSON.stringify(mechanism.slice(0, 64))} is not enabled (sasl.enabled.mechanisms=${mechanisms.join(',')})`,
      }
    const scram = this.#scramServer(mechanism)
    if (s.kind === 'authenticated') {
      if (version === 0)
        return {
          response: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms },
          close: 'SaslHandshake v0 cannot re-authenticate',
        }
      if (mechanism !== s.mechanism)
        return {
          response: { errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms },
          close: `re-authentication must keep the mechanism ${s.mechanism}, not ${mechanism}`,
        }
      this.#state = { kind: 'reauthenticate', mechanism, scram, principal: s.principal, expiresAt: s.expiresAt }
    } else {
      this.#state = { kind: 'authenticate', mechanism, bareTokens: version === 0, scram }
    }
    return { response: { errorCode: ErrorCode.NONE, mechanisms } }
  }

  /** One SaslAuthenticate request. */
  authenticate(version: number, token: Buffer): SaslStep<SaslAuthenticateResponse> {
    const step = this.#evaluate(token)
    if (step.error !== undefined)
      return {
        response: {
          errorCode: step.error.code,
          errorMessage: step.error.message,
          authBytes: Buffer.alloc(0),
          sessionLifetimeMs: 0,
        },
        close: step.error.message,
      }
    const lifetime = step.done && version >= 1 ? this.#settings.reauthMs : 0
    return {
      response: { errorCode: ErrorCode.NONE, errorMessage: null, authBytes: step.reply, sessionLifetimeMs: lifetime },
    }
  }

  /** One bare token (after SaslHandshake v0): the bare reply, or why to close with no reply (v0 has no error field). */
  bareToken(token: Buffer): SaslStep<Buffer | null> {
    const step = this.#evaluate(token)
    if (step.error !== undefined) return { response: null, close: step.error.message }
    return { response: step.reply }
  }

  #scramServer(mechanism: string): ScramServer | undefined {
    if (mechanism !== 'SCRAM-SHA-256' && mechanism !== 'SCRAM-SHA-512') return undefined
    return new ScramServer(mechanism, (user) => this.#settings.scramCredential(user, mechanism))
  }

  /** Feeds a token to the mechanism; on completion moves to authenticated. */
  #evaluate(
    token: Buffer,
  ): { reply: Buffer; done: boolean; error?: undefined } | { error: { code: number; message: string } } {
    const s = this.#state
    if (s.kind !== 'authenticate' && s.kind !== 'reauthenticate')
      return { error: { code: ErrorCode.ILLEGAL_SASL_STATE, message: 'SaslAuthenticate before SaslHandshake' } }
    let user: string | undefined
    let reply = Buffer.alloc(0)
    try {
      if (s.scram === undefined) user = verifyPlain(token, this.#settings.plainUsers)
      else {
        reply = s.scram.step(token)
        if (s.scram.complete) user = s.scram.username
      }
    } catch (err) {
      if (!(err instanceof SaslAuthenticationError)) throw err
      return { error: { code: ErrorCode.SASL_AUTHENTICATION_FAILED, message: err.message } }
    }
    if (user === undefined) return { reply, done: false }
    const principal = `User:${user}`
    if (s.kind === 'reauthenticate' && principal !== s.principal)
      return {
        error: {
          code: ErrorCode.SASL_AUTHENTICATION_FAILED,
          message: `re-authentication as ${principal} on a connection of ${s.principal}: a connection keeps its principal`,
        },
      }
    this.#state = {
      kind: 'authenticated',
      mechanism: s.mechanism,
      principal,
      expiresAt: this.#settings.now() + this.#settings.reauthMs,
    }
    return { reply, done: true }
  }
}
