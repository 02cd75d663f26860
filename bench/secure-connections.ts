// Connections for bench:broker's security scenario: TLS to an SSL listener, and TLS plus a SASL
// PLAIN login to a SASL_SSL listener, done before the load generator takes the socket, so that
// what the scenario measures per request is the cost of TLS and of the ACL checks, not of logging
// in (which happens once per connection).
import { type Socket } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { ApiKey } from '../src/protocol/apis.ts'
import { type SaslAuthenticateResponse } from '../src/protocol/messages/sasl-authenticate-response.ts'
import { type SaslHandshakeResponse } from '../src/protocol/messages/sasl-handshake-response.ts'
import { FrameReader } from './frames.ts'
import { decodeResponse, requestFrame } from './wire.ts'

/** A TLS connection trusting `ca`, the broker's certificate checked for `localhost`. */
export function openTls(host: string, port: number, ca: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host, port, ca, servername: 'localhost' }, () => {
      socket.off('error', reject)
      socket.setNoDelay(true)
      resolve(socket)
    })
    socket.once('error', reject)
  })
}

/** Writes one request and reads its response frame (size prefix removed), before any other traffic. */
function exchange(socket: Socket, frame: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const reader = new FrameReader()
    const onData = (chunk: Buffer) => {
      reader.push(chunk)
      const f = reader.next()
      if (f === null) return
      socket.off('data', onData)
      socket.off('error', reject)
      resolve(f.subarray(4))
    }
    socket.on('data', onData)
    socket.once('error', reject)
    socket.write(frame)
  })
}

/** A TLS connection logged in with SASL PLAIN (SaslHandshake v1, SaslAuthenticate v1). */
export async function openSaslSsl(
  host: string,
  port: number,
  ca: string,
  username: string,
  password: string,
): Promise<Socket> {
  const socket = await openTls(host, port, ca)
  const handshake = decodeResponse<SaslHandshakeResponse>(
    ApiKey.SaslHandshake,
    1,
    await exchange(socket, requestFrame(ApiKey.SaslHandshake, 1, 1, { mechanism: 'PLAIN' })),
  )
  if (handshake.body.errorCode !== 0) throw new Error(`SaslHandshake failed: error ${handshake.body.errorCode}`)
  const token = Buffer.from(`\u0000${username}\u0000${password}`)
  const auth = decodeResponse<SaslAuthenticateResponse>(
    ApiKey.SaslAuthenticate,
    1,
    await exchange(socket, requestFrame(ApiKey.SaslAuthenticate, 1, 2, { authBytes: token })),
  )
  if (auth.body.errorCode !== 0) throw new Error(`SASL login failed: ${auth.body.errorMessage}`)
  return socket
}
