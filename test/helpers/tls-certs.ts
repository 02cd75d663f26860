// Certificates for the security tests, made with the openssl command (scripts/system-tools.sh
// installs it): a CA, the broker's certificate for localhost and 127.0.0.1 signed by it, a client
// certificate per subject, and a self-signed "rogue" client certificate the CA never signed.
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface TestCertificates {
  readonly dir: string
  /** The CA certificate (PEM): the broker's truststore and the clients' CA. */
  readonly caPem: string
  readonly caFile: string
  /** The broker's private key followed by its certificate (PEM): ssl.keystore.location. */
  readonly brokerPemFile: string
  /** A client's key and certificate files, by the subject's CN. */
  client(cn: string): { keyFile: string; certFile: string; key: string; cert: string }
  /** A self-signed client certificate (CN=rogue), not signed by the CA. */
  readonly rogue: { keyFile: string; certFile: string; key: string; cert: string }
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] })
}

/** Makes every certificate in `dir` (a fresh temporary directory). */
export function makeCertificates(dir: string): TestCertificates {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(dir, [
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=Cortado Test CA',
  ])
  const signed = (name: string, subject: string, extensions?: string) => {
    openssl(dir, ['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject])
    const ext = extensions === undefined ? [] : ['-extfile', `${name}.ext`]
    if (extensions !== undefined) writeFileSync(join(dir, `${name}.ext`), extensions)
    openssl(dir, [
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${name}.pem`,
      '-days',
      '2',
      ...ext,
    ])
  }
  signed('broker', '/CN=localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
  writeFileSync(
    join(dir, 'broker-keystore.pem'),
    readFileSync(join(dir, 'broker.key'), 'utf8') + readFileSync(join(dir, 'broker.pem'), 'utf8'),
  )
  const files = (name: string) => ({
    keyFile: join(dir, `${name}.key`),
    certFile: join(dir, `${name}.pem`),
    key: readFileSync(join(dir, `${name}.key`), 'utf8'),
    cert: readFileSync(join(dir, `${name}.pem`), 'utf8'),
  })
  const clients = new Map<string, ReturnType<typeof files>>()
  openssl(dir, ['req', '-x509', ...ec, '-keyout', 'rogue.key', '-out', 'rogue.pem', '-days', '2', '-subj', '/CN=rogue'])
  return {
    dir,
    caPem: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    caFile: join(dir, 'ca.pem'),
    brokerPemFile: join(dir, 'broker-keystore.pem'),
    client(cn: string) {
      let c = clients.get(cn)
      if (c === undefined) {
        const name = `client-${cn.replace(/[^a-z0-9]/gi, '_')}`
        signed(name, `/O=Cortado Tests/OU=eng/CN=${cn}`)
        clients.set(cn, (c = files(name)))
      }
      return c
    },
    rogue: files('rogue'),
  }
}
