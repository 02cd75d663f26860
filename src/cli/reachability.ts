// Before a command works against Kafka or a router, it checks that it can reach it. Retrying is
// right while a cluster restarts, but silence is not: each failed attempt is reported (at most
// every few seconds) with what the command waits for and why, and after the timeout the command
// gives up with an error naming the address.
import { Admin } from '@platformatic/kafka'
import { errorChain } from '../client/errors.ts'
import { type ClientSecurity } from './client-config.ts'

const RETRY_MS = 500
const REPORT_EVERY_MS = 3000

/** The broker refused our credentials: retrying cannot help, so the command stops at once (exit code 1). */
export class KafkaAuthenticationError extends Error {
  readonly code = 'AUTHENTICATION_FAILED'
}

/** The broker or router could not be reached within the timeout: exit code 1, no usage text. */
export class UnreachableError extends Error {
  readonly code = 'UNREACHABLE'
}

export interface WaitOptions {
  timeoutMs: number
  /** Prints a progress line (stderr in the CLI). */
  say: (line: string) => void
}

/** Calls `attempt` until it succeeds or the timeout passes; `what` names the target in messages. */
export async function waitUntilReachable(what: string, attempt: () => Promise<void>, o: WaitOptions): Promise<void> {
  const deadline = Date.now() + o.timeoutMs
  let lastReport = 0
  for (;;) {
    let reason: string
    try {
      await attempt()
      return
    } catch (error) {
      if (error instanceof KafkaAuthenticationError) throw error
      reason = describe(error)
    }
    const now = Date.now()
    const left = deadline - now
    if (left <= 0)
      throw new UnreachableError(
        `cannot reach ${what} after ${Math.round(o.timeoutMs / 1000)} s (${reason}); is it running? --connect-timeout <seconds> waits longer`,
      )
    if (now - lastReport >= REPORT_EVERY_MS) {
      o.say(`cortado: waiting for ${what}: ${reason} (giving up in ${Math.ceil(left / 1000)} s)`)
      lastReport = now
    }
    await new Promise((r) => setTimeout(r, Math.min(RETRY_MS, left)))
  }
}

/**
 * One Metadata round trip to the bootstrap brokers, with no retries of its own, over TLS and SASL
 * when `security` says so (`--command-config`).
 */
export async function probeKafka(bootstrap: string[], timeoutMs: number, security: ClientSecurity = {}): Promise<void> {
  const admin = new Admin({
    clientId: 'cortado-probe',
    bootstrapBrokers: bootstrap,
    retries: 0,
    connectTimeout: Math.min(timeoutMs, 5000),
    timeout: Math.min(timeoutMs, 5000),
    tls: security.tls,
    sasl: security.sasl,
  })
  try {
    await admin.metadata({ topics: [] })
  } catch (error) {
    const chain = [...errorChain(error)]
    if (chain.some((e) => e.code === 'PLT_KFK_AUTHENTICATION')) {
      // The broker's own words (SaslAuthenticate's error message) sit in the response behind the error.
      const told = chain
        .map((e) => (e.response as { errorMessage?: unknown } | undefined)?.errorMessage)
        .find((m) => typeof m === 'string')
      throw new KafkaAuthenticationError(
        `Kafka at ${bootstrap.join(',')} refused our credentials: ${told ?? describe(error)}`,
      )
    }
    throw error
  } finally {
    await admin.close()
  }
}

export function waitForKafka(bootstrap: string[], o: WaitOptions & { security?: ClientSecurity }): Promise<void> {
  return waitUntilReachable(`Kafka at ${bootstrap.join(',')}`, () => probeKafka(bootstrap, o.timeoutMs, o.security), o)
}

/** The innermost cause's message: "connect ECONNREFUSED 127.0.0.1:1" rather than "fetch failed". */
function describe(error: unknown): string {
  let message = error instanceof Error ? error.message : String(error)
  for (const e of errorChain(error)) if (typeof e.message === 'string' && e.message !== '') message = e.message
  return message
}
