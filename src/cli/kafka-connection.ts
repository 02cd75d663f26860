// One connection to a broker for the admin commands (`cortado user`, `cortado acl`), over TLS and
// SASL when --command-config says so, and the responses of Kafka's admin APIs read whole even when
// some of their results carry errors (each is then reported on its own line).
import { Connection } from '@platformatic/kafka'
import { kafkaConnectionOptions } from '../client/kafka-security.ts'
import { type ClientSecurity } from './client-config.ts'

export async function connectTo(bootstrap: string, security: ClientSecurity, clientId: string): Promise<Connection> {
  const colon = bootstrap.lastIndexOf(':')
  const connection = new Connection(clientId, { ...kafkaConnectionOptions(security), connectTimeout: 10_000 })
  await connection.connect(bootstrap.slice(0, colon), Number(bootstrap.slice(colon + 1)))
  return connection
}

/**
 * The response, also when some of its results carry errors: @platformatic/kafka then throws a
 * ResponseError that carries it.
 */
export async function withErrors<T>(call: Promise<T>): Promise<T> {
  try {
    return await call
  } catch (error) {
    const response = (error as { response?: T } | undefined)?.response
    if (response === undefined) throw error
    return response
  }
}
