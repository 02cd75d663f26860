// The broker's listeners, TLS and SASL on the wire, with kafkajs and @platformatic/kafka as
// clients and exact bytes for hostile exchanges: SCRAM users managed with `cortado user` (durable
// across a restart), each listener advertising itself in Metadata, client certificates, KIP-368
// re-authentication, and every bad SASL exchange closing that connection only.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { promisify } from 'node:util'
import {
  Admin,
  type ConnectionOptions,
  Consumer,
  MessagesStreamModes,
  ProduceAcks,
  Producer,
  stringDeserializers,
  stringSerializers,
} from '@platformatic/kafka'
import { Kafka, logLevel, type SASLOptions } from 'kafkajs'
import { ApiKey } from '../../../src/protocol/apis.ts'
import { ErrorCode } from '../../../src/protocol/errors.ts'
import { type MetadataResponse } from '../../../src/protocol/messages/metadata-response.ts'
import { type SaslAuthenticateResponse } from '../../../src/protocol/messages/sasl-authenticate-response.ts'
import { type SaslHandshakeResponse } from '../../../src/protocol/messages/sasl-handshake-response.ts'
import { ScramClient } from '../../../src/broker/security/scram.ts'
import { type BrokerProcess, MAIN, removeDir, startBroker, tempDir } from '../../helpers/broker-process.ts'
import { parseResponse, RawClient, requestFrame } from '../../helpers/raw-client.ts'
import { makeCertificates, type TestCertificates } from '../../helpers/tls-certs.ts'

const run = promisify(execFile)
let certs: TestCertificates
let broker: BrokerProcess
let dataDir: string

const PLAIN_JAAS = 'org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";'

function config(): Record<string, string> {
  return {
    listeners: 'PLAINTEXT://:0,SASL_PLAINTEXT://:0,SSL://:0,SASL_SSL://:0,REAUTH://:0',
    'listener.security.protocol.map':
      'PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,REAUTH:SASL_PLAINTEXT',
    'ssl.keystore.location': certs.brokerPemFile,
    'ssl.truststore.location': certs.caFile,
    // The SSL listener requires a client certificate; SASL_SSL does not ask for one.
    'listener.name.ssl.ssl.client.auth': 'required',
    'sasl.jaas.config': PLAIN_JAAS,
    'listener.name.reauth.connections.max.reauth.ms': '2000',
    'group.initial.rebalance.delay.ms': '0',
  }
}

const address = (listener: string) => broker.listeners.get(listener)!
const portOf = (listener: string) => Number(address(listener).split(':')[1])

async function cortadoUser(...args: string[]): Promise<{ code: number; out: string }> {
  const through = args.includes('--command-config') ? [] : ['--bootstrap', address('PLAINTEXT')]
  try {
    const { stdout } = await run(process.execPath, [MAIN, 'user', ...args, ...through])
    return { code: 0, out: stdout }
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string }
    return { code: err.code, out: err.stdout + err.stderr }
  }
}

function kafkajs(listener: string, sasl?: SASLOptions, ssl?: object) {
  return new Kafka({
    clientId: 'security-test',
    brokers: [address(listener)],
    ssl: ssl ?? (listener.includes('SSL') ? { ca: [certs.caPem] } : undefined),
    sasl,
    logLevel: logLevel.NOTHING,
    retry: { retries: 1, initialRetryTime: 100 },
  })
}

/** SaslHandshake requests the broker has answered (its cortado_broker_requests_total). */
async function handshakes(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${broker.metricsPort}/metrics`)).text()
  return Number(/^cortado_broker_requests_total\{api="SaslHandshake"\} (\d+)/m.exec(text)?.[1] ?? 0)
}

/** Sends one record with kafkajs; resolves to 'ok' or the error's message. */
async function sendOne(kafka: Kafka, topic: string, value: string): Promise<string> {
  const producer = kafka.producer()
  try {
    await producer.connect()
    await producer.send({ topic, acks: -1, messages: [{ value }] })
    return 'ok'
  } catch (e) {
    return (e as Error).message
  } finally {
    await producer.disconnect().catch(() => undefined)
  }
}

before(async () => {
  certs = makeCertificates(tempDir('certs'))
  dataDir = tempDir('security')
  broker = await startBroker({ dataDir, config: config(), metrics: true })
  const added = await cortadoUser('add', 'bob', '--password', 'bob-secret')
  assert.equal(added.code, 0, added.out)
  assert.match(added.out, /added bob \(SCRAM-SHA-256, SCRAM-SHA-512\)/)
})

after(async () => {
  assert.equal(await broker.stop(), 0)
  removeDir(dataDir)
  removeDir(certs.dir)
})

void test('kafkajs produces over each listener with its security: PLAIN, SCRAM-SHA-256/512 over TLS, a client certificate', async () => {
  const topic = 'security-kafkajs'
  assert.equal(await sendOne(kafkajs('PLAINTEXT'), topic, 'plaintext'), 'ok')
  assert.equal(
    await sendOne(
      kafkajs('SASL_PLAINTEXT', { mechanism: 'plain', username: 'alice', password: 'alice-secret' }),
      topic,
      'plain',
    ),
    'ok',
  )
  for (const mechanism of ['scram-sha-256', 'scram-sha-512'] as const)
    assert.equal(
      await sendOne(kafkajs('SASL_SSL', { mechanism, username: 'bob', password: 'bob-secret' }), topic, mechanism),
      'ok',
    )
  const alice = certs.client('alice')
  assert.equal(
    await sendOne(kafkajs('SSL', undefined, { ca: [certs.caPem], cert: alice.cert, key: alice.key }), topic, 'cert'),
    'ok',
  )
  // Everything arrived, whichever way it came.
  const consumer = kafkajs('PLAINTEXT').consumer({ groupId: 'security-kafkajs-check' })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  const seen: string[] = []
  await new Promise<void>((resolve) => {
    void consumer.run({
      eachMessage: ({ message }) => {
        seen.push(message.value?.toString() ?? '')
        if (seen.length === 5) resolve()
        return Promise.resolve()
      },
    })
  })
  await consumer.disconnect()
  assert.deepEqual(seen.sort(), ['cert', 'plain', 'plaintext', 'scram-sha-256', 'scram-sha-512'])
})

void test('wrong credentials, a missing or unsigned client certificate, and plaintext on a TLS port are refused', async () => {
  const topic = 'security-refused'
  assert.match(
    await sendOne(kafkajs('SASL_SSL', { mechanism: 'scram-sha-256', username: 'bob', password: 'wrong' }), topic, 'x'),
    /Authentication failed: Invalid username or password/,
  )
  assert.match(
    await sendOne(kafkajs('SASL_SSL', { mechanism: 'scram-sha-512', username: 'nobody', password: 'x' }), topic, 'x'),
    /Authentication failed: Invalid username or password/,
  )
  assert.match(
    await sendOne(kafkajs('SASL_PLAINTEXT', { mechanism: 'plain', username: 'alice', password: 'nope' }), topic, 'x'),
    /Authentication failed/,
  )
  // SSL requires a certificate the CA signed.
  assert.notEqual(await sendOne(kafkajs('SSL', undefined, { ca: [certs.caPem] }), topic, 'x'), 'ok')
  assert.notEqual(
    await sendOne(
      kafkajs('SSL', undefined, { ca: [certs.caPem], cert: certs.rogue.cert, key: certs.rogue.key }),
      topic,
      'x',
    ),
    'ok',
  )
  // A SASL listener refuses a client that skips SASL; a TLS listener one that skips TLS.
  assert.notEqual(await sendOne(kafkajs('SASL_PLAINTEXT'), topic, 'x'), 'ok')
  assert.notEqual(await sendOne(kafkajs('SASL_SSL', undefined, false as unknown as object), topic, 'x'), 'ok')
  assert.match(broker.stderr(), /"msg":"TLS handshake failed"/)
})

void test('@platformatic/kafka produces with SCRAM-SHA-512 over TLS', async () => {
  const producer = new Producer({
    clientId: 'security-platformatic',
    bootstrapBrokers: [address('SASL_SSL')],
    tls: { ca: [certs.caPem] },
    sasl: { mechanism: 'SCRAM-SHA-512', username: 'bob', password: 'bob-secret' },
    serializers: stringSerializers,
    autocreateTopics: true,
    retries: 2,
  })
  try {
    const result = await producer.send({ messages: [{ topic: 'security-platformatic', value: 'hello' }], acks: -1 })
    assert.equal(result.offsets?.[0].offset, 0n)
  } finally {
    await producer.close()
  }
})

/** The security options of a @platformatic/kafka client (its `sasl` and `tls`). */
type PltSecurity = Pick<ConnectionOptions, 'sasl' | 'tls'>

function pltOptions(listener: string, security: PltSecurity, retries: number) {
  return {
    clientId: 'security-platformatic',
    bootstrapBrokers: [address(listener)],
    ...security,
    retries,
    retryDelay: 100,
  }
}

/**
 * Writes `value` to `topic` with @platformatic/kafka's Producer, then reads the topic from the start
 * with its Consumer in a group, both with `security`; resolves to the acknowledged offset and the values read.
 */
async function pltRoundTrip(
  listener: string,
  security: PltSecurity,
  topic: string,
  value: string,
): Promise<{ offset: bigint | undefined; read: string[] }> {
  const producer = new Producer({
    ...pltOptions(listener, security, 2),
    serializers: stringSerializers,
    autocreateTopics: true,
  })
  let offset: bigint | undefined
  try {
    offset = (await producer.send({ messages: [{ topic, value }], acks: ProduceAcks.ALL })).offsets?.[0].offset
  } finally {
    await producer.close()
  }
  const consumer = new Consumer({
    ...pltOptions(listener, security, 2),
    groupId: `${topic}-check`,
    deserializers: stringDeserializers,
    maxWaitTime: 100,
  })
  const read: string[] = []
  try {
    const stream = await consumer.consume({ topics: [topic], mode: MessagesStreamModes.EARLIEST, autocommit: false })
    for await (const message of stream) {
      read.push(message.value ?? '')
      if (message.value === value) break
    }
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  return { offset, read }
}

/** An error and everything it wraps (its cause and its errors), one line each: class, code, Kafka error, message. */
function errorChain(e: unknown): string[] {
  if (!(e instanceof Error)) return [String(e)]
  const err = e as Error & {
    code?: string
    apiId?: string
    apiCode?: number
    serverErrorMessage?: string | null
    errors?: unknown[]
  }
  const kafka = err.apiId === undefined ? '' : ` ${err.apiId}(${err.apiCode})`
  const server = err.serverErrorMessage == null ? '' : ` [${err.serverErrorMessage}]`
  return [
    `${err.constructor.name} ${err.code ?? ''}${kafka}: ${err.message}${server}`,
    ...(err.cause === undefined ? [] : errorChain(err.cause)),
    ...(err.errors ?? []).flatMap(errorChain),
  ]
}

void test(
  '@platformatic/kafka writes and reads back with SASL/PLAIN and SASL/SCRAM-SHA-256',
  { timeout: 60_000 },
  async () => {
    const plain = await pltRoundTrip(
      'SASL_PLAINTEXT',
      { sasl: { mechanism: 'PLAIN', username: 'alice', password: 'alice-secret' } },
      'security-platformatic-plain',
      'plain',
    )
    assert.deepEqual(plain, { offset: 0n, read: ['plain'] })
    for (const listener of ['SASL_PLAINTEXT', 'SASL_SSL']) {
      const scram = await pltRoundTrip(
        listener,
        {
          sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 'bob-secret' },
          tls: listener === 'SASL_SSL' ? { ca: [certs.caPem] } : undefined,
        },
        `security-platformatic-scram-${listener.toLowerCase()}`,
        'scram-sha-256',
      )
      assert.deepEqual(scram, { offset: 0n, read: ['scram-sha-256'] })
    }
  },
)

void test(
  '@platformatic/kafka: a wrong password fails the send with SASL_AUTHENTICATION_FAILED and delivers nothing',
  { timeout: 60_000 },
  async () => {
    const topic = 'security-platformatic-refused'
    const good: PltSecurity = {
      tls: { ca: [certs.caPem] },
      sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 'bob-secret' },
    }
    const admin = new Admin(pltOptions('SASL_SSL', good, 2))
    try {
      await admin.createTopics({ topics: [topic], partitions: 1 })
    } finally {
      await admin.close()
    }
    const refused: [string, PltSecurity][] = [
      ['SASL_SSL', { ...good, sasl: { mechanism: 'SCRAM-SHA-256', username: 'bob', password: 'wrong' } }],
      ['SASL_SSL', { ...good, sasl: { mechanism: 'SCRAM-SHA-512', username: 'nobody', password: 'x' } }],
      ['SASL_PLAINTEXT', { sasl: { mechanism: 'PLAIN', username: 'alice', password: 'nope' } }],
    ]
    for (const [listener, security] of refused) {
      // retries: 0, as the library would otherwise try the same credentials again.
      const producer = new Producer({ ...pltOptions(listener, security, 0), serializers: stringSerializers })
      try {
        const failed = await producer.send({ messages: [{ topic, value: 'x' }], acks: ProduceAcks.ALL }).then(
          () => null,
          (e: unknown) => e,
        )
        // Its MultipleErrors "Cannot connect to any broker." wraps a NetworkError, caused by an
        // AuthenticationError, caused by SaslAuthenticate's ResponseError with Kafka's error 58.
        const chain = errorChain(failed)
        const mechanism = security.sasl!.mechanism
        assert.equal(chain[0], 'MultipleErrors PLT_KFK_MULTIPLE: Cannot connect to any broker.', mechanism)
        assert.ok(chain.includes('AuthenticationError PLT_KFK_AUTHENTICATION: SASL authentication failed.'), mechanism)
        assert.ok(
          chain.some((line) => line.startsWith('ProtocolError PLT_KFK_PROTOCOL SASL_AUTHENTICATION_FAILED(58)')),
          `${mechanism}: ${chain.join(' / ')}`,
        )
      } finally {
        await producer.close()
      }
    }
    // Nothing arrived: the topic's end offset is still 0.
    const consumer = new Consumer({ ...pltOptions('SASL_SSL', good, 2), groupId: 'security-platformatic-unused' })
    try {
      assert.deepEqual(await consumer.listOffsets({ topics: [topic] }), new Map([[topic, [0n]]]))
    } finally {
      await consumer.close()
    }
  },
)

void test(
  '@platformatic/kafka with a client certificate the CA signed; one it did not sign, or none, is refused',
  { timeout: 60_000 },
  async () => {
    const alice = certs.client('alice')
    const topic = 'security-platformatic-cert'
    const signed = await pltRoundTrip(
      'SSL',
      { tls: { ca: [certs.caPem], cert: alice.cert, key: alice.key } },
      topic,
      'cert',
    )
    assert.deepEqual(signed, { offset: 0n, read: ['cert'] })
    const refused = [{ ca: [certs.caPem], cert: certs.rogue.cert, key: certs.rogue.key }, { ca: [certs.caPem] }]
    for (const tls of refused) {
      const producer = new Producer({ ...pltOptions('SSL', { tls }, 0), serializers: stringSerializers })
      try {
        const failed = await producer.send({ messages: [{ topic, value: 'x' }], acks: ProduceAcks.ALL }).then(
          () => null,
          (e: unknown) => e,
        )
        // With TLS 1.3 the client's side of the handshake is over before the broker checks its
        // certificate: the library only sees the connection closed, without the TLS alert.
        assert.deepEqual(errorChain(failed), ['NetworkError PLT_KFK_NETWORK: Connection closed'])
      } finally {
        await producer.close()
      }
    }
    // The broker's log says why (its stderr arrives asynchronously).
    const why = /"listener":"SSL","error":"[^"]*peer did not return a certificate/
    for (let i = 0; i < 100 && !why.test(broker.stderr()); i++) await new Promise((r) => setTimeout(r, 50))
    assert.match(broker.stderr(), why)
  },
)

void test('Metadata answers each client with the address of the listener it came through', async () => {
  const admin = kafkajs('SASL_SSL', { mechanism: 'scram-sha-256', username: 'bob', password: 'bob-secret' }).admin()
  await admin.connect()
  const cluster = await admin.describeCluster()
  await admin.disconnect()
  assert.deepEqual(
    cluster.brokers.map((b) => b.port),
    [portOf('SASL_SSL')],
  )
  const raw = await RawClient.connect(portOf('PLAINTEXT'))
  raw.write(requestFrame(ApiKey.Metadata, 1, 1, { topics: null }))
  const { body } = parseResponse<MetadataResponse>(ApiKey.Metadata, 1, await raw.nextFrame())
  raw.close()
  assert.equal(body.brokers[0].port, portOf('PLAINTEXT'))
})

void test('on a listener without SASL, SaslHandshake is answered ILLEGAL_SASL_STATE', async () => {
  const raw = await RawClient.connect(portOf('PLAINTEXT'))
  raw.write(requestFrame(ApiKey.SaslHandshake, 1, 3, { mechanism: 'PLAIN' }))
  const { body } = parseResponse<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, await raw.nextFrame())
  raw.close()
  assert.equal(body.errorCode, ErrorCode.ILLEGAL_SASL_STATE)
})

/** A raw connection to the SASL_PLAINTEXT listener, past SaslHandshake v1 for `mechanism`. */
async function handshaken(mechanism: string): Promise<RawClient> {
  const raw = await RawClient.connect(portOf('SASL_PLAINTEXT'))
  raw.write(requestFrame(ApiKey.SaslHandshake, 1, 1, { mechanism }))
  const { body } = parseResponse<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, await raw.nextFrame())
  assert.equal(body.errorCode, ErrorCode.NONE)
  return raw
}

function authenticate(raw: RawClient, token: Buffer, correlationId = 2): Promise<SaslAuthenticateResponse> {
  raw.write(requestFrame(ApiKey.SaslAuthenticate, 1, correlationId, { authBytes: token }))
  return raw.nextFrame().then((f) => parseResponse<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 1, f).body)
}

/** A SCRAM-SHA-256 login of bob on a raw connection; returns the client-final message it sent. */
async function scramLogin(raw: RawClient, client: ScramClient): Promise<Buffer> {
  const first = await authenticate(raw, client.first())
  assert.equal(first.errorCode, ErrorCode.NONE)
  const final = client.final(first.authBytes)
  const last = await authenticate(raw, final, 3)
  assert.equal(last.errorCode, ErrorCode.NONE)
  client.verify(last.authBytes)
  return final
}

void test('hostile SASL exchanges close their own connection only, with the right error where the protocol has one', async () => {
  const bystander = kafkajs('SASL_SSL', {
    mechanism: 'scram-sha-512',
    username: 'bob',
    password: 'bob-secret',
  }).producer()
  await bystander.connect()
  const cases: [string, () => Promise<{ raw: RawClient; error?: number }>][] = [
    [
      'a request before authenticating',
      async () => {
        const raw = await RawClient.connect(portOf('SASL_PLAINTEXT'))
        raw.write(requestFrame(ApiKey.Metadata, 1, 1, { topics: null }))
        return { raw }
      },
    ],
    [
      'SaslAuthenticate before SaslHandshake',
      async () => {
        const raw = await RawClient.connect(portOf('SASL_PLAINTEXT'))
        raw.write(requestFrame(ApiKey.SaslAuthenticate, 1, 1, { authBytes: Buffer.from('\0alice\0alice-secret') }))
        return { raw }
      },
    ],
    [
      'a mechanism that is not enabled',
      async () => {
        const raw = await RawClient.connect(portOf('SASL_PLAINTEXT'))
        raw.write(requestFrame(ApiKey.SaslHandshake, 1, 1, { mechanism: 'GSSAPI' }))
        const { body } = parseResponse<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, await raw.nextFrame())
        return { raw, error: body.errorCode }
      },
    ],
    [
      'a truncated SCRAM client-first message',
      async () => {
        const raw = await handshaken('SCRAM-SHA-256')
        return { raw, error: (await authenticate(raw, Buffer.from('n,,n=bob'))).errorCode }
      },
    ],
    [
      'a replayed SCRAM client-final message (the server nonce differs)',
      async () => {
        const nonce = 'fixed-client-nonce-for-replay'
        const first = await handshaken('SCRAM-SHA-256')
        const final = await scramLogin(first, new ScramClient('SCRAM-SHA-256', 'bob', 'bob-secret', nonce))
        first.close()
        const raw = await handshaken('SCRAM-SHA-256')
        const again = await authenticate(raw, new ScramClient('SCRAM-SHA-256', 'bob', 'bob-secret', nonce).first())
        assert.equal(again.errorCode, ErrorCode.NONE)
        return { raw, error: (await authenticate(raw, final, 3)).errorCode }
      },
    ],
    [
      'a 1 MiB token before authenticating (over sasl.server.max.receive.size)',
      async () => {
        const raw = await handshaken('PLAIN')
        raw.write(requestFrame(ApiKey.SaslAuthenticate, 1, 2, { authBytes: Buffer.alloc(1 << 20, 0x61) }))
        return { raw }
      },
    ],
    [
      'a 100 KiB PLAIN token',
      async () => {
        const raw = await handshaken('PLAIN')
        return { raw, error: (await authenticate(raw, Buffer.alloc(100 * 1024, 0x61))).errorCode }
      },
    ],
    [
      'a garbage bare token after SaslHandshake v0',
      async () => {
        const raw = await RawClient.connect(portOf('SASL_PLAINTEXT'))
        raw.write(requestFrame(ApiKey.SaslHandshake, 0, 1, { mechanism: 'SCRAM-SHA-512' }))
        await raw.nextFrame()
        const garbage = Buffer.from('this is not SCRAM')
        const frame = Buffer.alloc(4 + garbage.length)
        frame.writeInt32BE(garbage.length, 0)
        garbage.copy(frame, 4)
        raw.write(frame)
        return { raw }
      },
    ],
  ]
  for (const [what, exchange] of cases) {
    const { raw, error } = await exchange()
    await raw.closed
    if (error !== undefined)
      assert.ok(
        error === ErrorCode.SASL_AUTHENTICATION_FAILED || error === ErrorCode.UNSUPPORTED_SASL_MECHANISM,
        `${what}: error ${error}`,
      )
    // The authenticated bystander is not disturbed.
    await bystander.send({ topic: 'security-bystander', acks: -1, messages: [{ value: what }] })
  }
  await bystander.disconnect()
  assert.doesNotMatch(broker.stderr(), /"level":"error"/)
})

void test('KIP-368: kafkajs re-authenticates before its session ends; a client that does not is cut off', async () => {
  // connections.max.reauth.ms=2000 on REAUTH; kafkajs re-authenticates once within its threshold of the end.
  const kafka = new Kafka({
    clientId: 'security-reauth',
    brokers: [address('REAUTH')],
    sasl: { mechanism: 'scram-sha-256', username: 'bob', password: 'bob-secret' },
    reauthenticationThreshold: 1000,
    logLevel: logLevel.NOTHING,
  })
  const producer = kafka.producer()
  await producer.connect()
  const before = await handshakes()
  for (let i = 0; i < 10; i++) {
    await producer.send({ topic: 'security-reauth', acks: -1, messages: [{ value: String(i) }] })
    await new Promise((r) => setTimeout(r, 500))
  }
  await producer.disconnect()
  // One connection, sessions of 2 s over 5 s of sends: it re-authenticated at least twice, and no send failed.
  assert.ok((await handshakes()) - before >= 2, `${before} → ${await handshakes()} handshakes`)
  // A raw client logs in, stays quiet past its session, and its next request closes the connection.
  const raw = await RawClient.connect(portOf('REAUTH'))
  raw.write(requestFrame(ApiKey.SaslHandshake, 1, 1, { mechanism: 'SCRAM-SHA-256' }))
  await raw.nextFrame()
  await scramLogin(raw, new ScramClient('SCRAM-SHA-256', 'bob', 'bob-secret'))
  raw.write(requestFrame(ApiKey.Metadata, 1, 8, { topics: null }))
  assert.equal((await raw.nextFrame()).readInt32BE(0), 8, 'served while the session lasts')
  await new Promise((r) => setTimeout(r, 2200))
  raw.write(requestFrame(ApiKey.Metadata, 1, 9, { topics: null }))
  await raw.closed
  assert.match(broker.stderr(), /SASL session of User:bob expired/)
})

void test('cortado user --command-config authenticates with SCRAM over TLS as Kafka tools do; a wrong password is refused', async () => {
  const properties = (password: string) => {
    const file = join(certs.dir, `admin-${password}.properties`)
    writeFileSync(
      file,
      [
        'security.protocol=SASL_SSL',
        'sasl.mechanism=SCRAM-SHA-256',
        `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="bob" password="${password}";`,
        `ssl.truststore.location=${certs.caFile}`,
      ].join('\n'),
    )
    return file
  }
  const ok = await cortadoUser(
    'list',
    'bob',
    '--bootstrap',
    address('SASL_SSL'),
    '--command-config',
    properties('bob-secret'),
  )
  assert.equal(ok.code, 0, ok.out)
  assert.match(ok.out, /^bob\tSCRAM-SHA-256/m)
  const refused = await cortadoUser('list', '--bootstrap', address('SASL_SSL'), '--command-config', properties('wrong'))
  assert.notEqual(refused.code, 0)
  assert.match(refused.out, /Authentication failed: Invalid username or password/)
})

void test('cortado user: list, refusals with Kafka error messages, remove; credentials survive a restart', async () => {
  const listed = await cortadoUser('list')
  assert.equal(listed.code, 0)
  assert.match(listed.out, /^bob\tSCRAM-SHA-256 \(4096 iterations\), SCRAM-SHA-512 \(4096 iterations\)$/m)
  const few = await cortadoUser('add', 'carol', '--password', 'x', '--iterations', '100')
  assert.equal(few.code, 1)
  assert.match(few.out, /carol: refused: Iterations 100 outside 4096\.\.16384/)
  const missing = await cortadoUser('remove', 'nobody', '--mechanism', 'SCRAM-SHA-256')
  assert.equal(missing.code, 1)
  assert.match(missing.out, /Attempt to delete a user credential that does not exist/)
  const unknown = await cortadoUser('list', 'nobody')
  assert.equal(unknown.code, 1)
  assert.match(unknown.out, /nobody: Attempt to describe a user credential that does not exist/)
  assert.equal((await cortadoUser('add', 'dave', '--password', 'dave-secret', '--mechanism', 'SCRAM-SHA-512')).code, 0)

  // Restarted on the same data directory: bob and dave still log in; then dave is removed.
  assert.equal(await broker.stop(), 0)
  broker = await startBroker({ dataDir, config: config(), metrics: true })
  const asDave = () =>
    sendOne(
      kafkajs('SASL_SSL', { mechanism: 'scram-sha-512', username: 'dave', password: 'dave-secret' }),
      'security-restart',
      'd',
    )
  assert.equal(await asDave(), 'ok')
  assert.equal(
    await sendOne(
      kafkajs('SASL_SSL', { mechanism: 'scram-sha-256', username: 'bob', password: 'bob-secret' }),
      'security-restart',
      'b',
    ),
    'ok',
  )
  assert.equal((await cortadoUser('remove', 'dave')).code, 1, 'dave has no SCRAM-SHA-256 credential to remove')
  assert.equal((await cortadoUser('remove', 'dave', '--mechanism', 'SCRAM-SHA-512')).code, 0)
  assert.match(await asDave(), /Authentication failed/)
})
