// The errors of the broker's SASL layer, as typed values with codes the request handlers map to
// Kafka error codes. Their messages go to the client (SaslAuthenticate's error message), so they
// describe malformed input precisely but never say whether a user exists.

/** Kafka error 58 (SASL_AUTHENTICATION_FAILED): bad credentials or a malformed SASL message. */
export class SaslAuthenticationError extends Error {
  readonly code = 'SASL_AUTHENTICATION_FAILED'
  constructor(message: string) {
    super(message)
    this.name = 'SaslAuthenticationError'
  }
}

/** Kafka error 33 (UNSUPPORTED_SASL_MECHANISM): the client asked for a mechanism the broker does not enable. */
export class UnsupportedSaslMechanismError extends Error {
  readonly code = 'UNSUPPORTED_SASL_MECHANISM'
  constructor(message: string) {
    super(message)
    this.name = 'UnsupportedSaslMechanismError'
  }
}

/** Kafka error 93 (UNACCEPTABLE_CREDENTIAL): a SCRAM credential that cannot be stored (iterations out of bounds, empty salt). */
export class UnacceptableCredentialError extends Error {
  readonly code = 'UNACCEPTABLE_CREDENTIAL'
  constructor(message: string) {
    super(message)
    this.name = 'UnacceptableCredentialError'
  }
}

/** The message for wrong credentials, the same whether the user is unknown or the password wrong. */
export const INVALID_CREDENTIALS = 'Authentication failed: Invalid username or password'
