// How the database's processes and the client layer reach a Kafka that asks for TLS or SASL: one
// value, handed down to every @platformatic/kafka client (Producer, Consumer, Admin, Connection)
// they create. Only node: imports here, so src/db and src/client may use it.
import { type ConnectionOptions } from 'node:tls'

export type SaslMechanism = 'PLAIN' | 'SCRAM-SHA-256' | 'SCRAM-SHA-512'

/** How a Kafka client connects: TLS options (undefined: plaintext) and SASL credentials (undefined: none). */
export interface KafkaSecurity {
  tls?: ConnectionOptions
  sasl?: { mechanism: SaslMechanism; username: string; password: string }
}

/**
 * The options of a @platformatic/kafka client (Producer, Consumer, Admin, Connection) for
 * `security`: its `tls` and `sasl` options have these shapes; keys left undefined are left out.
 */
export function kafkaConnectionOptions(security: KafkaSecurity | undefined): KafkaSecurity {
  const out: KafkaSecurity = {}
  if (security?.tls !== undefined) out.tls = security.tls
  if (security?.sasl !== undefined) out.sasl = security.sasl
  return out
}
