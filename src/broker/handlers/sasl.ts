// SaslHandshake (key 17) and SaslAuthenticate (key 36) on a listener without SASL (PLAINTEXT,
// SSL): Kafka answers ILLEGAL_SASL_STATE. On SASL listeners the connection's SASL exchange
// (src/broker/security/sasl-authenticator.ts) answers them before any handler is reached.
import { ApiKey } from '../../protocol/apis.ts'
import { ErrorCode } from '../../protocol/errors.ts'
import { type BoundHandler, defineHandler } from '../server.ts'

export function saslHandshakeHandler(): BoundHandler<typeof ApiKey.SaslHandshake> {
  return defineHandler(ApiKey.SaslHandshake, () => ({ errorCode: ErrorCode.ILLEGAL_SASL_STATE, mechanisms: [] }))
}

export function saslAuthenticateHandler(): BoundHandler<typeof ApiKey.SaslAuthenticate> {
  return defineHandler(ApiKey.SaslAuthenticate, (ctx) => ({
    errorCode: ErrorCode.ILLEGAL_SASL_STATE,
    errorMessage: `listener ${ctx.listener} does not use SASL`,
    authBytes: Buffer.alloc(0),
    sessionLifetimeMs: 0,
  }))
}
