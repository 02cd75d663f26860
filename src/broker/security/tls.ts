// TLS for SSL and SASL_SSL listeners, from Kafka's ssl.* settings (each also per listener), with
// node:tls. Keys and certificates are PEM (files or inline, KIP-651) or a PKCS12 file; Java's JKS
// is not readable here, which the config refuses with a clear message. With client certificates
// (ssl.client.auth), the principal is the certificate's subject as Kafka names it by default
// (`User:CN=alice,OU=eng,O=example`, RFC 2253 order: the last RDN first).
import { readFileSync } from 'node:fs'
import { type TLSSocket, type TlsOptions } from 'node:tls'
import { type BrokerConfig, ConfigError } from '../config.ts'

function readFile(key: string, path: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new ConfigError(key, `${key}: cannot read ${path}: ${(err as Error).message}`)
  }
}

/** The node:tls server options of `listener` (an SSL or SASL_SSL listener). */
export function tlsServerOptions(config: BrokerConfig, listener: string): TlsOptions {
  const get = (key: string) => config.forListener(listener, key)
  const versions = get('ssl.enabled.protocols')
    .split(',')
    .map((v) => v.trim())
    .sort()
  const options: TlsOptions = {
    minVersion: versions[0] as 'TLSv1.2' | 'TLSv1.3',
    maxVersion: versions[versions.length - 1] as 'TLSv1.2' | 'TLSv1.3',
  }
  const location = get('ssl.keystore.location')
  if (get('ssl.keystore.type') === 'PKCS12') {
    if (location === '') throw new ConfigError('ssl.keystore.location', missingKeystore(listener))
    options.pfx = readFile('ssl.keystore.location', location)
    options.passphrase = get('ssl.keystore.password')
  } else if (location !== '') {
    // One PEM file with the private key and the certificate chain, as Kafka's PEM keystore.
    const pem = readFile('ssl.keystore.location', location)
    options.key = pem
    options.cert = pem
    if (get('ssl.key.password') !== '') options.passphrase = get('ssl.key.password')
  } else if (get('ssl.keystore.key') !== '' && get('ssl.keystore.certificate.chain') !== '') {
    options.key = get('ssl.keystore.key')
    options.cert = get('ssl.keystore.certificate.chain')
    if (get('ssl.key.password') !== '') options.passphrase = get('ssl.key.password')
  } else {
    throw new ConfigError('ssl.keystore.location', missingKeystore(listener))
  }
  const clientAuth = get('ssl.client.auth')
  if (clientAuth !== 'none') {
    const ca =
      get('ssl.truststore.location') !== ''
        ? readFile('ssl.truststore.location', get('ssl.truststore.location'))
        : get('ssl.truststore.certificates')
    if (ca === '')
      throw new ConfigError(
        'ssl.truststore.location',
        `listener ${listener}: ssl.client.auth=${clientAuth} needs ssl.truststore.location (or ssl.truststore.certificates), the CA certificates client certificates are checked against`,
      )
    options.ca = ca
    options.requestCert = true
    // 'requested': a client without a certificate is let in (as ANONYMOUS); one with a bad one is not.
    options.rejectUnauthorized = clientAuth === 'required'
  }
  return options
}

function missingKeystore(listener: string): string {
  return `listener ${listener} is SSL or SASL_SSL and needs a key and certificate: set ssl.keystore.location (a PEM file with both, or a PKCS12 file with ssl.keystore.type=PKCS12), or ssl.keystore.key and ssl.keystore.certificate.chain (optionally per listener: listener.name.${listener.toLowerCase()}.ssl.keystore.location)`
}

/** RFC 2253 escaping of an attribute value. */
function escapeDnValue(value: string): string {
  return value.replace(/([,+"\\<>;])/g, '\\$1').replace(/^([ #])/, '\\$1')
}

/**
 * The principal of a TLS client: `User:<subject>` if it presented a certificate the truststore
 * verified, else undefined (the connection is then ANONYMOUS, unless SASL names it).
 */
export function certificatePrincipal(socket: TLSSocket): string | undefined {
  if (!socket.authorized) return undefined
  const cert = socket.getPeerX509Certificate()
  if (cert === undefined) return undefined
  // node lists the subject's attributes one per line in certificate order; Kafka's X500Principal
  // name is RFC 2253: comma-separated, most specific (last) first.
  const rdns = cert.subject
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const eq = l.indexOf('=')
      return `${l.slice(0, eq)}=${escapeDnValue(l.slice(eq + 1))}`
    })
  return `User:${rdns.reverse().join(',')}`
}
