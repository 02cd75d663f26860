// A handler is bound to the API key whose request it decodes: filing it under another key does
// not compile. The @ts-expect-error lines are checked by `tsc --noEmit` (an unused one is an
// error too); the runtime test checks the registry refuses two handlers for one key.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ApiKey } from '../../src/protocol/apis.ts'
import { type HeartbeatRequest } from '../../src/protocol/messages/heartbeat-request.ts'
import { heartbeatHandler } from '../../src/broker/handlers/heartbeat.ts'
import { type AnyHandler, type BoundHandler, defineHandler, KafkaServer } from '../../src/broker/server.ts'
import { Logger } from '../../src/util/log.ts'
import { createRegistry } from '../../src/util/metrics.ts'

const groups = { heartbeat: () => Promise.resolve(0) }

// The request type follows from the key: a Heartbeat handler cannot be defined under ApiKey.Fetch.
// @ts-expect-error a Heartbeat request handler registered under ApiKey.Fetch
defineHandler(ApiKey.Fetch, (_ctx, req: HeartbeatRequest) => ({ errorCode: req.generationId }))

// A bound handler keeps its key: the heartbeat handler is not a Fetch handler.
// @ts-expect-error BoundHandler<Heartbeat> filed as BoundHandler<Fetch>
export const misfiled: BoundHandler<typeof ApiKey.Fetch> = heartbeatHandler({ groups })

// The registry takes bound handlers only, not bare functions.
// @ts-expect-error a bare function is not a bound handler
export const bare: AnyHandler[] = [(_ctx: unknown, _req: HeartbeatRequest) => ({ errorCode: 0 })]

test('a handler carries the key it was defined for', () => {
  assert.equal(heartbeatHandler({ groups }).apiKey, ApiKey.Heartbeat)
})

test('the server refuses two handlers for one API key', () => {
  const handlers: AnyHandler[] = [heartbeatHandler({ groups }), heartbeatHandler({ groups })]
  assert.throws(
    () =>
      new KafkaServer({
        listeners: [{ name: 'PLAINTEXT', host: '127.0.0.1', port: 0 }],
        maxFrameBytes: 1 << 20,
        maxInflight: 1,
        handlers,
        log: new Logger(),
        registry: createRegistry(),
      }),
    /two handlers for API key 12/,
  )
})
