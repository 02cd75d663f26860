// The router's pipelined channel to storage nodes (src/db/node-rpc.ts, node-channel.ts): frames
// cut correctly from any chunking, calls of one turn in one write, answers paired by id in any
// order, and what the router learns when a call fails: not sent (safe to retry) or sent (outcome
// unknown); a node without the channel is called over HTTP. The peers here are plain node:http
// servers speaking the protocol's two sides; the whole path router → node runs in
// test/db/api.test.ts and the fault tests.
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import { type AddressInfo } from 'node:net'
import { type Duplex } from 'node:stream'
import { test } from 'node:test'
import {
  CoalescingWriter,
  decodeRequest,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  FrameReader,
  MAX_FRAME_BYTES,
  RPC_UPGRADE,
  RpcFrameError,
} from '../../../src/db/node-rpc.ts'
import { NodeClient, NodeUnreachableError } from '../../../src/db/node-client/node-client.ts'

void test('frames are cut the same from any chunking; an oversized frame is refused', () => {
  const frames = [
    encodeRequest(1, 'POST', '/_node/write', JSON.stringify({ a: 'é'.repeat(300) })),
    encodeRequest(2, 'GET', '/_node/doc/db/0/t/k?from=any', undefined),
    encodeResponse(3, 404, { etag: '1.2' }, '{"error":{}}'),
  ]
  const stream = Buffer.concat(frames)
  for (const size of [1, 2, 3, 5, 7, 64, stream.length]) {
    const reader = new FrameReader()
    const out: Buffer[] = []
    for (let i = 0; i < stream.length; i += size) out.push(...reader.push(stream.subarray(i, i + size)))
    assert.equal(out.length, 3, `chunks of ${size}`)
    const a = decodeRequest(out[0])
    assert.deepEqual(
      [a.id, a.method, a.path, (JSON.parse(a.body.toString()) as { a: string }).a.length],
      [1, 'POST', '/_node/write', 300],
    )
    const b = decodeRequest(out[1])
    assert.deepEqual([b.id, b.method, b.path, b.body.length], [2, 'GET', '/_node/doc/db/0/t/k?from=any', 0])
    const c = decodeResponse(out[2])
    assert.deepEqual([c.id, c.status, c.headers, c.body.toString()], [3, 404, { etag: '1.2' }, '{"error":{}}'])
  }
  const huge = Buffer.alloc(4)
  huge.writeUInt32BE(MAX_FRAME_BYTES + 1)
  assert.throws(() => new FrameReader().push(huge), RpcFrameError)
  assert.throws(() => decodeRequest(Buffer.from([0, 0, 0, 1, 9, 0, 0])), RpcFrameError)
})

/** A node side speaking the channel: each upgraded socket emits 'frames' with the frames it reads. */
async function channelPeer(onSocket: (socket: Duplex) => void): Promise<Server> {
  const server = createServer((_req, res) => res.writeHead(404).end())
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    assert.equal(req.headers.upgrade, RPC_UPGRADE)
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RPC_UPGRADE}\r\n\r\n`)
    const reader = new FrameReader()
    onSocket(socket)
    socket.on('data', (d: Buffer) => socket.emit('frames', reader.push(d)))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

const urlOf = (s: Server) => `http://127.0.0.1:${(s.address() as AddressInfo).port}`

void test('calls of one turn share one write; answers in any order reach their callers', async () => {
  let writes = 0
  const server = await channelPeer((socket) => {
    socket.on('data', () => writes++)
    socket.on('frames', (frames: Buffer[]) => {
      // Answer in reverse order, all in one write.
      const answers = frames.reverse().map((f) => {
        const call = decodeRequest(f)
        return encodeResponse(call.id, 200, null, JSON.stringify({ path: call.path, body: call.body.toString() }))
      })
      socket.write(Buffer.concat(answers))
    })
  })
  const client = new NodeClient(5000)
  try {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        client.post<{ path: string; body: string }>(urlOf(server), `/p/${i}`, { i }),
      ),
    )
    assert.deepEqual(
      results.map((r) => [r.path, (JSON.parse(r.body) as { i: number }).i]),
      Array.from({ length: 20 }, (_, i) => [`/p/${i}`, i]),
    )
    assert.equal(writes, 1, 'twenty calls made in one turn arrive in one write')
  } finally {
    await client.close()
    server.close()
  }
})

void test("a node's answers released together leave in one write, before the rest of the turn runs", async () => {
  const events: string[] = []
  const out = new CoalescingWriter((data) => events.push(`write ${data.toString()}`), 'microtasks')
  // The rest of the turn: a callback queued before the answers (say the node's next fetch).
  setImmediate(() => events.push('rest of the turn'))
  // Three writes applied together: each answer comes at the end of its own chain of promise jobs.
  const answer = async (name: string) => {
    await Promise.resolve()
    await Promise.resolve()
    out.push(Buffer.from(name))
  }
  await Promise.all([answer('a'), answer('b'), answer('c')])
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(events, ['write abc', 'rest of the turn'])
})

void test('a node that refuses the connection: not sent; one that drops it after the call: maybe executed', async () => {
  const client = new NodeClient(5000)
  const closed = createServer()
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
  const refusedUrl = urlOf(closed)
  await new Promise<void>((resolve) => closed.close(() => resolve()))
  const dropping = await channelPeer((socket) => socket.on('frames', () => socket.destroy()))
  try {
    const refused = await client.post(refusedUrl, '/_node/write', {}).then(
      () => assert.fail('a call to a closed port succeeded'),
      (e: unknown) => e,
    )
    assert.ok(refused instanceof NodeUnreachableError)
    assert.equal(refused.maybeExecuted, false)
    const dropped = await client.post(urlOf(dropping), '/_node/write', {}).then(
      () => assert.fail('a call the node dropped succeeded'),
      (e: unknown) => e,
    )
    assert.ok(dropped instanceof NodeUnreachableError)
    assert.equal(dropped.maybeExecuted, true)
    // The next call opens a new connection.
    const again = await client.post(urlOf(dropping), '/_node/write', {}).catch((e: unknown) => e)
    assert.ok(again instanceof NodeUnreachableError && again.maybeExecuted)
  } finally {
    await client.close()
    dropping.close()
  }
})

void test('a node that answers and then goes away (FIN): a call made after it fails as not sent', async () => {
  // A killed node's kernel closes the connection: the answers it wrote arrive, then its FIN. A call
  // the router makes right after must not go out on that dead connection and be reported as maybe
  // executed (a write would then be answered 504, outcome unknown, instead of being retried). When
  // the FIN travels apart from the answer depends on the kernel, so the scenario runs several times.
  for (let round = 0; round < 8; round++) {
    // One connection only, as to a node that is gone: a new one is refused.
    const server: Server = await channelPeer((socket) => {
      server.close()
      let answered = false
      socket.on('frames', (frames: Buffer[]) => {
        if (answered) return
        answered = true
        socket.end(encodeResponse(decodeRequest(frames[0]).id, 200, null, '{"ok":true}'))
      })
    })
    const url = urlOf(server)
    const client = new NodeClient(5000)
    try {
      assert.deepEqual(await client.post(url, '/_node/write', {}), { ok: true })
      // As at the router: the FIN is already in the kernel (the event loop was busy meanwhile)
      // when the next call is made, from a callback run before the loop reads it.
      const until = performance.now() + 20
      while (performance.now() < until);
      await new Promise((resolve) => setTimeout(resolve, 0))
      const after = await client.post(url, '/_node/write', {}).then(
        () => assert.fail('a call to a node that closed its side succeeded'),
        (e: unknown) => e,
      )
      assert.ok(after instanceof NodeUnreachableError, String(after))
      assert.equal(after.maybeExecuted, false, `round ${round}: ${after.message}`)
    } finally {
      await client.close()
    }
  }
})

void test('a call with no answer fails after its timeout as maybe executed; a node without the channel is called over HTTP', async () => {
  const silent = await channelPeer(() => undefined)
  const plain = createServer((req, res) => {
    if (req.headers.upgrade !== undefined) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ over: 'http', path: req.url }))
  })
  await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve))
  const client = new NodeClient(5000)
  try {
    const started = performance.now()
    const timedOut = await client.get(urlOf(silent), '/_node/status', 300).catch((e: unknown) => e)
    assert.ok(timedOut instanceof NodeUnreachableError && timedOut.maybeExecuted)
    assert.ok(performance.now() - started < 4000, 'the call was failed at its own timeout, not the default')
    assert.deepEqual(await client.get(urlOf(plain), '/_node/status'), { over: 'http', path: '/_node/status' })
    assert.deepEqual(await client.get(urlOf(plain), '/_node/status?x=1'), { over: 'http', path: '/_node/status?x=1' })
  } finally {
    await client.close()
    silent.close()
    plain.close()
  }
})
