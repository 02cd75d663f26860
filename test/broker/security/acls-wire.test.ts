// ACL authorization on the wire, with KafkaJS's admin and clients (and @platformatic/kafka's
// Producer and Consumer, for what a refusal looks like there): ACLs created, described and
// deleted over Kafka's APIs, each refused operation answered with Kafka's error for it (topic,
// group, cluster), DENY winning over ALLOW, the decision cache following changes, ACLs surviving a
// restart, denials logged and counted, and SECURITY_DISABLED without an authorizer.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import {
  Consumer,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { ApiKey } from '../../../src/protocol/apis.ts'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import { type CreateAclsResponse } from '../../../src/protocol/messages/create-acls-response.ts'
import { type BrokerProcess, removeDir, startBroker, tempDir } from '../../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../../helpers/raw-client.ts'

const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs

const JAAS =
  'org.apache.kafka.common.security.plain.PlainLoginModule required user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";'

let broker: BrokerProcess
let dataDir: string

function config(): Record<string, string> {
  return {
    listeners: 'PLAINTEXT://:0,SASL_PLAINTEXT://:0',
    'authorizer.class.name': 'kafka.security.authorizer.AclAuthorizer',
    'super.users': 'User:admin',
    'sasl.enabled.mechanisms': 'PLAIN',
    'sasl.jaas.config': JAAS,
    'group.initial.rebalance.delay.ms': '0',
  }
}

function client(user: string) {
  return new Kafka({
    clientId: `acl-${user}`,
    brokers: [broker.listeners.get('SASL_PLAINTEXT')!],
    sasl: { mechanism: 'plain', username: user, password: `${user}-secret` },
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
  })
}

/** What a kafkajs call threw: its Kafka error type (e.g. TOPIC_AUTHORIZATION_FAILED), or 'ok'. */
async function outcome(call: () => Promise<unknown>): Promise<string> {
  try {
    await call()
    return 'ok'
  } catch (e) {
    const err = e as { type?: string; message: string; errors?: { type?: string }[] }
    return err.type ?? err.errors?.find((x) => x.type !== undefined)?.type ?? err.message
  }
}

async function produce(user: string, topic: string): Promise<string> {
  const producer = client(user).producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    return await outcome(() => producer.send({ topic, acks: -1, messages: [{ value: `${user} was here` }] }))
  } finally {
    await producer.disconnect()
  }
}

/** Waits (up to 5 s) for the broker's log to hold a line matching `pattern`: its stderr arrives asynchronously. */
async function logged(pattern: RegExp): Promise<void> {
  for (let i = 0; i < 100 && !pattern.test(broker.stderr()); i++) await new Promise((r) => setTimeout(r, 50))
  assert.match(broker.stderr(), pattern)
}

async function metric(name: string): Promise<string> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  return text
    .split('\n')
    .filter((l) => l.startsWith(name))
    .join('\n')
}

const acl = (
  resourceType: number,
  resourceName: string,
  principal: string,
  operation: number,
  permissionType: number = AclPermissionTypes.ALLOW,
  resourcePatternType: number = ResourcePatternTypes.LITERAL,
) => ({ resourceType, resourceName, resourcePatternType, principal, host: '*', operation, permissionType })

before(async () => {
  dataDir = tempDir('acls')
  broker = await startBroker({ dataDir, config: config(), metrics: true })
  const admin = client('admin').admin()
  await admin.connect()
  await admin.createTopics({
    topics: ['orders-eu', 'orders-secret', 'payments'].map((topic) => ({ topic, numPartitions: 1 })),
  })
  await admin.createAcls({
    acl: [
      acl(
        AclResourceTypes.TOPIC,
        'orders',
        'User:alice',
        AclOperationTypes.WRITE,
        undefined,
        ResourcePatternTypes.PREFIXED,
      ),
      acl(AclResourceTypes.TOPIC, 'orders-eu', 'User:alice', AclOperationTypes.READ),
      acl(AclResourceTypes.GROUP, 'g-alice', 'User:alice', AclOperationTypes.READ),
      acl(AclResourceTypes.TOPIC, '*', 'User:bob', AclOperationTypes.READ),
      acl(AclResourceTypes.TOPIC, 'orders-secret', 'User:bob', AclOperationTypes.READ, AclPermissionTypes.DENY),
    ],
  })
  await admin.disconnect()
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(dataDir)
})

void test('produce: WRITE on the topic (prefixed) is needed; without it TOPIC_AUTHORIZATION_FAILED; super users may do anything', async () => {
  assert.equal(await produce('alice', 'orders-eu'), 'ok')
  assert.equal(await produce('alice', 'orders-secret'), 'ok', 'orders-secret is also prefixed orders')
  assert.match(await produce('alice', 'payments'), /TOPIC_AUTHORIZATION_FAILED|Topic authorization failed/)
  assert.match(await produce('bob', 'orders-eu'), /TOPIC_AUTHORIZATION_FAILED|Topic authorization failed/)
  assert.equal(await produce('admin', 'payments'), 'ok')
})

void test('consume: READ on the topic and on the group; DENY wins over a wildcard ALLOW', async () => {
  const consume = async (user: string, topic: string, groupId: string): Promise<string> => {
    const consumer = client(user).consumer({ groupId, sessionTimeout: 6000 })
    try {
      await consumer.connect()
      await consumer.subscribe({ topic, fromBeginning: true })
      return await new Promise<string>((resolve) => {
        consumer
          .run({
            eachMessage: ({ message }) => {
              resolve(`read ${message.value?.toString() ?? ''}`)
              return Promise.resolve()
            },
          })
          .catch((e: unknown) => resolve((e as { type?: string }).type ?? String(e)))
        consumer.on(consumer.events.CRASH, (e) => {
          const err = e.payload.error as { type?: string; message: string }
          resolve(err.type ?? err.message)
        })
      })
    } catch (e) {
      return (e as { type?: string }).type ?? String(e)
    } finally {
      await consumer.disconnect().catch(() => undefined)
    }
  }
  assert.equal(await consume('alice', 'orders-eu', 'g-alice'), 'read alice was here')
  // FindCoordinator needs DESCRIBE on the group: the broker answers GROUP_AUTHORIZATION_FAILED, which
  // kafkajs 2.2.4 reports as "Failed to find group coordinator" (as it does against Apache Kafka).
  assert.equal(await consume('alice', 'orders-eu', 'g-other'), 'Failed to find group coordinator')
  await logged(/"principal":"User:alice".*"operation":"DESCRIBE","resourceType":"GROUP","resourceName":"g-other"/)
  assert.equal(await consume('bob', 'orders-secret', 'g-alice'), 'Failed to find group coordinator')
  const admin = client('admin').admin()
  await admin.connect()
  await admin.createAcls({ acl: [acl(AclResourceTypes.GROUP, 'g-bob', 'User:bob', AclOperationTypes.READ)] })
  await admin.disconnect()
  assert.equal(await consume('bob', 'orders-eu', 'g-bob'), 'read alice was here')
  assert.match(await consume('bob', 'orders-secret', 'g-bob'), /TOPIC_AUTHORIZATION_FAILED|Topic authorization failed/)
})

/** An error and everything it wraps (its cause and its errors), one line each: class, code, Kafka error, message. */
function errorChain(e: unknown): string[] {
  if (!(e instanceof Error)) return [String(e)]
  const err = e as Error & { code?: string; apiId?: string; apiCode?: number; errors?: unknown[] }
  const kafka = err.apiId === undefined ? '' : ` ${err.apiId}(${err.apiCode})`
  return [
    `${err.constructor.name} ${err.code ?? ''}${kafka}: ${err.message}`,
    ...(err.cause === undefined ? [] : errorChain(err.cause)),
    ...(err.errors ?? []).flatMap(errorChain),
  ]
}

void test(
  '@platformatic/kafka: allowed produce and consume work; refusals carry TOPIC_ and GROUP_AUTHORIZATION_FAILED',
  { timeout: 60_000 },
  async () => {
    // alice: WRITE on topics prefixed orders, READ on orders-eu and on group g-alice, nothing on payments
    // or g-other; bob: READ on every topic (so he may describe payments), no WRITE.
    const as = (user: string) => ({
      clientId: `acl-platformatic-${user}`,
      bootstrapBrokers: [broker.listeners.get('SASL_PLAINTEXT')!],
      sasl: { mechanism: 'PLAIN' as const, username: user, password: `${user}-secret` },
      retries: 0,
    })
    const send = async (user: string, topic: string): Promise<string[]> => {
      const producer = new Producer({ ...as(user), serializers: stringSerializers })
      try {
        return await producer
          .send({ messages: [{ topic, value: `${user} via platformatic` }], acks: ProduceAcks.ALL })
          .then((result) => (result.offsets ?? []).map((o) => `${o.topic} acknowledged`), errorChain)
      } finally {
        await producer.close()
      }
    }
    assert.deepEqual(await send('alice', 'orders-eu'), ['orders-eu acknowledged'])
    // alice may not even describe payments: the producer's Metadata request is refused.
    assert.deepEqual(await send('alice', 'payments'), [
      'ResponseError PLT_KFK_RESPONSE: Received response with error while executing API Metadata(v12)',
      'ProtocolError PLT_KFK_PROTOCOL TOPIC_AUTHORIZATION_FAILED(29): Topic authorization failed.',
    ])
    // bob may describe it but not write to it: Produce itself is refused.
    assert.deepEqual(await send('bob', 'payments'), [
      'MultipleErrors PLT_KFK_MULTIPLE: Producing messages failed.',
      'ResponseError PLT_KFK_RESPONSE: Received response with error while executing API Produce(v11)',
      'ProtocolError PLT_KFK_PROTOCOL TOPIC_AUTHORIZATION_FAILED(29): Topic authorization failed.',
    ])

    /** Reads orders-eu from the start in `groupId` up to alice's record; resolves to the values, or the error chain. */
    const consume = async (groupId: string): Promise<string[]> => {
      const consumer = new Consumer({ ...as('alice'), groupId, deserializers: stringDeserializers, maxWaitTime: 100 })
      try {
        const stream = await consumer.consume({
          topics: ['orders-eu'],
          mode: MessagesStreamModes.EARLIEST,
          autocommit: false,
        })
        const read: string[] = []
        for await (const message of stream) {
          read.push(message.value ?? '')
          if (message.value === 'alice via platformatic') break
        }
        await stream.close()
        return read
      } catch (e) {
        return errorChain(e)
      } finally {
        await consumer.close(true)
      }
    }
    assert.equal((await consume('g-alice')).at(-1), 'alice via platformatic')
    // consume() joins the group first; FindCoordinator, which needs DESCRIBE on the group, is refused.
    assert.deepEqual(await consume('g-other'), [
      'MultipleErrors PLT_KFK_MULTIPLE: Received response with error while executing API FindCoordinator(v4) Group authorization failed.',
      'ProtocolError PLT_KFK_PROTOCOL GROUP_AUTHORIZATION_FAILED(30): Group authorization failed.',
    ])
  },
)

void test('metadata lists only the topics a principal may describe; ANONYMOUS on PLAINTEXT sees none', async () => {
  const admin = client('alice').admin()
  await admin.connect()
  const topics = await admin.listTopics()
  await admin.disconnect()
  assert.deepEqual(topics.sort(), ['orders-eu', 'orders-secret'])
  const raw = await RawClient.connect(Number(broker.listeners.get('PLAINTEXT')!.split(':')[1]))
  raw.write(requestFrame(ApiKey.Metadata, 1, 1, { topics: null }))
  const { body } = parseResponse<{ topics: unknown[] }>(ApiKey.Metadata, 1, await raw.nextFrame())
  raw.close()
  assert.deepEqual(body.topics, [])
})

void test('ACL administration needs the cluster: alice is refused; the admin describes and deletes, and the cache follows', async () => {
  const alice = client('alice').admin()
  await alice.connect()
  const anyFilter = {
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  }
  assert.equal(await outcome(() => alice.describeAcls(anyFilter)), 'CLUSTER_AUTHORIZATION_FAILED')
  assert.match(
    await outcome(() =>
      alice.createAcls({ acl: [acl(AclResourceTypes.TOPIC, 'payments', 'User:alice', AclOperationTypes.WRITE)] }),
    ),
    /CLUSTER_AUTHORIZATION_FAILED|Cluster authorization failed/,
  )
  assert.match(
    await outcome(() => alice.createTopics({ topics: [{ topic: 'new-topic' }] })),
    /TOPIC_AUTHORIZATION_FAILED|authoriz/i,
  )
  await alice.disconnect()

  const admin = client('admin').admin()
  await admin.connect()
  const described = await admin.describeAcls({ ...anyFilter, resourceType: AclResourceTypes.TOPIC })
  const lines = described.resources.flatMap((r) =>
    r.acls.map((a) => `${a.permissionType} ${a.principal} ${a.operation} ${r.resourceName} ${r.resourcePatternType}`),
  )
  assert.deepEqual(
    lines.sort(),
    [
      `${AclPermissionTypes.ALLOW} User:alice ${AclOperationTypes.READ} orders-eu ${ResourcePatternTypes.LITERAL}`,
      `${AclPermissionTypes.ALLOW} User:alice ${AclOperationTypes.WRITE} orders ${ResourcePatternTypes.PREFIXED}`,
      `${AclPermissionTypes.ALLOW} User:bob ${AclOperationTypes.READ} * ${ResourcePatternTypes.LITERAL}`,
      `${AclPermissionTypes.DENY} User:bob ${AclOperationTypes.READ} orders-secret ${ResourcePatternTypes.LITERAL}`,
    ].sort(),
  )
  // A filter by MATCH selects what applies to one name (literal, wildcard and prefixed).
  const matching = await admin.describeAcls({
    ...anyFilter,
    resourceType: AclResourceTypes.TOPIC,
    resourceName: 'orders-eu',
    resourcePatternType: ResourcePatternTypes.MATCH,
  })
  assert.equal(matching.resources.length, 3)
  // An invalid ACL is refused with Kafka's message, the valid ones of the same request stored.
  const raw = await RawClient.connect(Number(broker.listeners.get('PLAINTEXT')!.split(':')[1]))
  raw.write(
    requestFrame(ApiKey.CreateAcls, 3, 1, {
      creations: [
        {
          resourceType: 4,
          resourceName: 'not-the-cluster',
          resourcePatternType: 3,
          principal: 'User:x',
          host: '*',
          operation: 7,
          permissionType: 3,
        },
      ],
    }),
  )
  const created = parseResponse<CreateAclsResponse>(ApiKey.CreateAcls, 3, await raw.nextFrame()).body
  raw.close()
  // ANONYMOUS is no super user: refused before validation.
  assert.equal(created.results[0].errorCode, ErrorCode.CLUSTER_AUTHORIZATION_FAILED)

  const deleted = await admin.deleteAcls({ filters: [{ ...anyFilter, principal: 'User:alice' }] })
  assert.equal(deleted.filterResponses[0].matchingAcls.length, 3)
  await admin.disconnect()
  // The decision cache was dropped with the change: alice's write is refused now.
  assert.match(await produce('alice', 'orders-eu'), /TOPIC_AUTHORIZATION_FAILED|Topic authorization failed/)
})

void test('denials are logged with who, what and which resource, and counted by operation and resource type', async () => {
  await logged(
    /"msg":"authorization denied".*"principal":"User:bob","host":"127\.0\.0\.1","operation":"WRITE","resourceType":"TOPIC","resourceName":"orders-eu"/,
  )
  assert.match(
    await metric('cortado_broker_authorization_denied_total'),
    /cortado_broker_authorization_denied_total\{operation="WRITE",resource_type="TOPIC"\} [1-9]/,
  )
})

void test('ACLs survive a restart; a broker without an authorizer answers ACL requests SECURITY_DISABLED', async () => {
  assert.equal(await broker.stop(), 0)
  broker = await startBroker({ dataDir, config: config(), metrics: true })
  assert.match(await produce('bob', 'orders-eu'), /TOPIC_AUTHORIZATION_FAILED|Topic authorization failed/)
  const admin = client('admin').admin()
  await admin.connect()
  const left = await admin.describeAcls({
    resourceType: AclResourceTypes.ANY,
    resourcePatternType: ResourcePatternTypes.ANY,
    operation: AclOperationTypes.ANY,
    permissionType: AclPermissionTypes.ANY,
  })
  await admin.disconnect()
  assert.deepEqual(left.resources.map((r) => r.resourceName).sort(), ['*', 'g-bob', 'orders-secret'])

  const open = await startBroker({})
  try {
    const raw = await RawClient.connect(open.port)
    raw.write(
      requestFrame(ApiKey.CreateAcls, 3, 1, {
        creations: [
          {
            resourceType: 2,
            resourceName: 't',
            resourcePatternType: 3,
            principal: 'User:x',
            host: '*',
            operation: 3,
            permissionType: 3,
          },
        ],
      }),
    )
    const res = parseResponse<CreateAclsResponse>(ApiKey.CreateAcls, 3, await raw.nextFrame()).body
    raw.close()
    assert.equal(res.results[0].errorCode, ErrorCode.SECURITY_DISABLED)
  } finally {
    assert.equal(await open.stop(), 0)
    removeDir(open.dataDir)
  }
})
