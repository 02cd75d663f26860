// TLS for SSL and SASL_SSL listeners (src/broker/security/tls.ts), in process: the server options
// Kafka's ssl.* settings give (and the clear error when the keystore is missing), and the principal
// a client certificate gives, in Kafka's RFC 2253 form, over a real TLS handshake.
import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { connect, createServer, type TLSSocket } from 'node:tls'
import { BrokerConfig, ConfigError } from '../../../src/broker/config.ts'
import { certificatePrincipal, tlsServerOptions } from '../../../src/broker/security/tls.ts'
import { removeDir, tempDir } from '../../helpers/broker-process.ts'
import { makeCertificates, type TestCertificates } from '../../helpers/tls-certs.ts'

let certs: TestCertificates

before(() => {
  certs = makeCertificates(tempDir('tls-certs'))
})

after(() => removeDir(certs.dir))

/** The principal the broker's TLS code gives a client presenting `client` (or none). */
async function principalOf(clientAuth: string, client?: { key: string; cert: string }): Promise<string | undefined> {
  const config = new BrokerConfig({
    'ssl.keystore.location': certs.brokerPemFile,
    'ssl.truststore.location': certs.caFile,
    'ssl.client.auth': clientAuth,
  })
  let seen: string | undefined
  const server = createServer(tlsServerOptions(config, 'SSL'), (socket: TLSSocket) => {
    seen = certificatePrincipal(socket)
    socket.end('x')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  try {
    await new Promise<void>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port, ca: certs.caPem, servername: 'localhost', ...client })
      socket.on('data', () => socket.end())
      socket.on('close', () => resolve())
      socket.on('error', reject)
    })
    return seen
  } finally {
    server.close()
  }
}

test("a verified client certificate's subject is the principal, most specific first, as Kafka names it", async () => {
  assert.equal(await principalOf('required', certs.client('alice')), 'User:CN=alice,OU=eng,O=Cortado Tests')
  assert.equal(await principalOf('requested', certs.client('bob')), 'User:CN=bob,OU=eng,O=Cortado Tests')
  // requested, and no certificate: no principal from TLS (the connection is ANONYMOUS).
  assert.equal(await principalOf('requested'), undefined)
  assert.equal(await principalOf('none', certs.client('alice')), undefined)
})

test('an SSL listener without a key and certificate is refused at start with what to set', () => {
  assert.throws(
    () => tlsServerOptions(new BrokerConfig({}), 'EXTERNAL'),
    (e: unknown) =>
      e instanceof ConfigError &&
      /listener EXTERNAL is SSL or SASL_SSL and needs a key and certificate: set ssl.keystore.location/.test(
        e.message,
      ) &&
      /listener.name.external.ssl.keystore.location/.test(e.message),
  )
  assert.throws(
    () => tlsServerOptions(new BrokerConfig({ 'ssl.keystore.location': '/nonexistent.pem' }), 'SSL'),
    /ssl.keystore.location: cannot read \/nonexistent.pem/,
  )
  assert.throws(
    () =>
      tlsServerOptions(
        new BrokerConfig({ 'ssl.keystore.location': certs.brokerPemFile, 'ssl.client.auth': 'required' }),
        'SSL',
      ),
    /ssl.client.auth=required needs ssl.truststore.location/,
  )
})
