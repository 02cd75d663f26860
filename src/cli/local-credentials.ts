// The credentials `cortado start` makes on its first start, so a local cluster is secure by
// default (docs/security.md, "A secure local cluster"):
//   - `admin`: the database API's first cluster admin and the embedded broker's super user, with
//     one random password;
//   - `cortado-router`, `cortado-controller`, `cortado-node`, `cortado-cdc` (the change-topic
//     publisher): SCRAM users of the cluster's own processes on the embedded broker, each with
//     only the ACLs its work needs;
//   - the cluster secret, which the storage nodes' internal API requires of every caller
//     (the router, and the nodes themselves fetching snapshots from their peers).
// They live in <data-dir>/credentials/ (owner-only: 0700 directory, 0600 files): credentials.json,
// cluster.secret (for `cortado node --cluster-secret-file`), and a Kafka client properties file
// per user for --command-config, kcat -F and other Kafka tools.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { type KafkaSecurity } from '../client/kafka-security.ts'
import { type Broker } from '../broker/broker.ts'
import { AclOperation, type AclBinding, PatternType, Permission, ResourceType } from '../broker/security/acls.ts'
import { scramCredential } from '../broker/security/scram.ts'
import { randomPassword } from '../db/access/users.ts'
import { METADATA_TOPIC } from '../db/metadata/metadata-log.ts'
import { writeFileDurably } from '../util/durable-file.ts'

export type ServiceRole = 'router' | 'controller' | 'node' | 'cdc'
const SERVICE_ROLES: readonly ServiceRole[] = ['router', 'controller', 'node', 'cdc']
export const ADMIN_USER = 'admin'
/** The SASL mechanism of the local cluster's embedded broker. */
const MECHANISM = 'SCRAM-SHA-512'
/** Every replication topic's name starts so (model.ts topicOf). */
const DATABASE_TOPIC_PREFIX = 'cortado-db-'
/** Every change topic's name starts so (debezium.ts cdcTopicOf). */
const CDC_TOPIC_PREFIX = 'cortado-cdc-'

export interface Credential {
  name: string
  password: string
}

export interface LocalCredentials {
  admin: Credential
  services: Record<ServiceRole, Credential>
  clusterSecret: string
}

export class CredentialsFileError extends Error {
  readonly code = 'INVALID_CREDENTIALS_FILE'
}

export const credentialsDir = (dataDir: string): string => join(dataDir, 'credentials')
export const propertiesFile = (dataDir: string, user: string): string =>
  join(credentialsDir(dataDir), `${user}.properties`)
export const clusterSecretFile = (dataDir: string): string => join(credentialsDir(dataDir), 'cluster.secret')

/** The credentials of this data directory, made (and written owner-only) on the first start. */
export function loadOrCreateCredentials(dataDir: string): {
  credentials: LocalCredentials
  created: boolean
  path: string
} {
  const dir = credentialsDir(dataDir)
  const path = join(dir, 'credentials.json')
  let credentials: LocalCredentials
  let created = false
  const service = (role: ServiceRole): Credential => ({ name: `cortado-${role}`, password: randomPassword() })
  if (existsSync(path)) {
    credentials = readCredentials(path)
    // A service added since the file was made gets its credential now.
    const missing = SERVICE_ROLES.filter((r) => credentials.services[r] === undefined)
    for (const r of missing) credentials.services[r] = service(r)
    if (missing.length > 0) writeFileDurably(path, JSON.stringify(credentials, null, 2) + '\n')
  } else {
    credentials = {
      admin: { name: ADMIN_USER, password: randomPassword() },
      services: Object.fromEntries(SERVICE_ROLES.map((r) => [r, service(r)])) as Record<ServiceRole, Credential>,
      clusterSecret: randomBytes(32).toString('base64url'),
    }
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    writeFileDurably(path, JSON.stringify(credentials, null, 2) + '\n')
    created = true
  }
  writeFileDurably(clusterSecretFile(dataDir), credentials.clusterSecret + '\n')
  return { credentials, created, path }
}

/** Writes each user's Kafka client properties file, for the broker's address of this start. */
export function writeClientProperties(dataDir: string, credentials: LocalCredentials, brokerAddress: string): void {
  for (const c of [credentials.admin, ...Object.values(credentials.services)])
    writeFileDurably(propertiesFile(dataDir, c.name), clientProperties(c, brokerAddress))
}

function readCredentials(path: string): LocalCredentials {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new CredentialsFileError(`${path}: ${(error as Error).message}`)
  }
  const c = parsed as Partial<LocalCredentials>
  const ok = (x: unknown): x is Credential =>
    typeof (x as Credential | undefined)?.name === 'string' && typeof (x as Credential).password === 'string'
  if (
    !ok(c.admin) ||
    typeof c.services !== 'object' ||
    !SERVICE_ROLES.every((r) => c.services?.[r] === undefined || ok(c.services[r])) ||
    typeof c.clusterSecret !== 'string'
  )
    throw new CredentialsFileError(
      `${path}: expected {admin: {name, password}, services: {router, controller, node}, clusterSecret}`,
    )
  return c as LocalCredentials
}

function clientProperties(c: Credential, brokerAddress: string): string {
  return [
    `# Cortado local cluster: Kafka client settings of ${c.name} (librdkafka names: kcat -F, confluent-kafka, cortado --command-config)`,
    `bootstrap.servers=${brokerAddress}`,
    'security.protocol=SASL_PLAINTEXT',
    `sasl.mechanism=${MECHANISM}`,
    `sasl.username=${c.name}`,
    `sasl.password=${c.password}`,
    '',
  ].join('\n')
}

/** The embedded broker's settings for a secure local cluster: SCRAM on its one listener, and ACLs. */
export function secureBrokerSettings(host: string, port: number): Record<string, string> {
  return {
    listeners: `SASL_PLAINTEXT://${host}:${port}`,
    'sasl.enabled.mechanisms': MECHANISM,
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'super.users': `User:${ADMIN_USER}`,
  }
}

/** How a process of the cluster connects to the embedded broker. */
export function serviceSecurity(credential: Credential): KafkaSecurity {
  return { sasl: { mechanism: MECHANISM, username: credential.name, password: credential.password } }
}

/**
 * The ACLs each process of the cluster needs (WRITE on a topic implies IDEMPOTENT_WRITE on the
 * cluster, KIP-679): every one reads and writes the metadata topic (and creates it if missing);
 * the router creates the replication topics; the nodes read and write them; the change-topic
 * publisher reads them and writes the change topics.
 */
export function serviceAcls(services: Record<ServiceRole, Credential>): AclBinding[] {
  const out: AclBinding[] = []
  const allow = (user: Credential, patternType: number, resourceName: string, operations: number[]) => {
    for (const operation of operations)
      out.push({
        resourceType: ResourceType.TOPIC,
        resourceName,
        patternType,
        principal: `User:${user.name}`,
        host: '*',
        operation,
        permission: Permission.ALLOW,
      })
  }
  const { READ, WRITE, DESCRIBE, CREATE } = AclOperation
  for (const role of ['router', 'controller', 'node'] as const)
    allow(services[role], PatternType.LITERAL, METADATA_TOPIC, [READ, WRITE, DESCRIBE, CREATE])
  allow(services.router, PatternType.PREFIXED, DATABASE_TOPIC_PREFIX, [CREATE, DESCRIBE])
  allow(services.node, PatternType.PREFIXED, DATABASE_TOPIC_PREFIX, [READ, WRITE, DESCRIBE])
  // The change-topic publisher reads the metadata and the replication topics, and owns the change topics.
  allow(services.cdc, PatternType.LITERAL, METADATA_TOPIC, [READ, DESCRIBE, CREATE])
  allow(services.cdc, PatternType.PREFIXED, DATABASE_TOPIC_PREFIX, [READ, DESCRIBE])
  allow(services.cdc, PatternType.PREFIXED, CDC_TOPIC_PREFIX, [READ, WRITE, DESCRIBE, CREATE])
  return out
}

/**
 * Gives the embedded broker the SCRAM users of the credentials (those it does not have yet: a
 * password an operator changed since, with `cortado user add`, stays) and the services' ACLs.
 */
export function grantLocalAccess(broker: Broker, credentials: LocalCredentials): void {
  for (const c of [credentials.admin, ...Object.values(credentials.services)]) {
    if (broker.scramCredentials.get(c.name, MECHANISM) !== undefined) continue
    broker.scramCredentials.set(c.name, scramCredential(MECHANISM, c.password))
  }
  broker.acls.create(serviceAcls(credentials.services))
}
