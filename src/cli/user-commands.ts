// `cortado user`: SCRAM users of a broker, over the wire (AlterUserScramCredentials and
// DescribeUserScramCredentials, KIP-554), so it works against Cortado's broker and Apache Kafka
// alike, as `kafka-configs.sh --alter --entity-type users` does:
//   cortado user add <name> --password <p> [--mechanism SCRAM-SHA-256|SCRAM-SHA-512|all] [--iterations 4096]
//   cortado user remove <name> [--mechanism …|all]
//   cortado user list [<name>…]
// The password never leaves this process: it is salted and iterated here (PBKDF2, RFC 5802's
// Hi), and the broker gets the salt and the salted password. `--password -` reads it from stdin.
import { randomBytes } from 'node:crypto'
import { alterUserScramCredentialsV0, type Connection, describeUserScramCredentialsV0 } from '@platformatic/kafka'
import {
  isScramMechanism,
  saltedPassword,
  SCRAM_MECHANISMS,
  type ScramMechanism,
  scramMechanismById,
  scramMechanismId,
} from '../broker/security/scram.ts'
import { type ClientSecurity } from './client-config.ts'
import { connectTo, withErrors } from './kafka-connection.ts'

export class UserUsageError extends Error {
  readonly code = 'USAGE'
}

export interface UserOptions {
  bootstrap: string
  security: ClientSecurity
  password?: string
  mechanism: string
  iterations: number
}

function mechanismsOf(option: string): ScramMechanism[] {
  if (option === 'all') return [...SCRAM_MECHANISMS]
  if (!isScramMechanism(option))
    throw new UserUsageError(`--mechanism must be SCRAM-SHA-256, SCRAM-SHA-512 or all, got ${option}`)
  return [option]
}

type Results = { results: { user: string; errorCode: number; errorMessage?: string | null }[] }

/** Runs one subcommand; returns the process's exit code (1 if the broker refused anything). */
export async function user(o: UserOptions, positionals: string[], say: (line: string) => void): Promise<number> {
  const [sub, ...names] = positionals
  const connection = await connectTo(o.bootstrap, o.security, 'cortado-user')
  try {
    if (sub === 'list') return await list(connection, names, say)
    if (sub !== 'add' && sub !== 'remove') throw new UserUsageError('cortado user add | remove | list')
    if (names.length !== 1) throw new UserUsageError(`cortado user ${sub} takes one user name`)
    const name = names[0]
    const mechanisms = mechanismsOf(o.mechanism)
    let response: Results
    if (sub === 'add') {
      if (o.password === undefined || o.password === '') throw new UserUsageError('cortado user add needs --password')
      const password = o.password
      const upsertions = mechanisms.map((m) => {
        const salt = randomBytes(32)
        return {
          name,
          mechanism: scramMechanismId(m),
          iterations: o.iterations,
          salt,
          saltedPassword: saltedPassword(m, password, salt, o.iterations),
        }
      })
      response = await withErrors<Results>(alterUserScramCredentialsV0.api.async(connection, [], upsertions))
    } else {
      const deletions = mechanisms.map((m) => ({ name, mechanism: scramMechanismId(m) }))
      response = await withErrors<Results>(alterUserScramCredentialsV0.api.async(connection, deletions, []))
    }
    let failed = 0
    for (const r of response.results) {
      if (r.errorCode === 0) say(`${sub === 'add' ? 'added' : 'removed'} ${r.user} (${mechanisms.join(', ')})`)
      else {
        failed++
        say(`${r.user}: refused: ${r.errorMessage ?? `error ${r.errorCode}`}`)
      }
    }
    return failed === 0 ? 0 : 1
  } finally {
    await connection.close().catch(() => undefined)
  }
}

type Described = {
  results: {
    user: string
    errorCode: number
    errorMessage?: string | null
    credentialInfos: { mechanism: number; iterations: number }[]
  }[]
}

async function list(connection: Connection, names: string[], say: (line: string) => void): Promise<number> {
  const users = names.length === 0 ? null : names.map((name) => ({ name }))
  const response = await withErrors<Described>(describeUserScramCredentialsV0.api.async(connection, users))
  let failed = 0
  for (const r of response.results) {
    if (r.errorCode !== 0) {
      failed++
      say(`${r.user}: ${r.errorMessage ?? `error ${r.errorCode}`}`)
      continue
    }
    const infos = r.credentialInfos.map(
      (c) => `${scramMechanismById(c.mechanism) ?? `mechanism ${c.mechanism}`} (${c.iterations} iterations)`,
    )
    say(`${r.user}\t${infos.join(', ')}`)
  }
  return failed === 0 ? 0 : 1
}
