// The node's end of the router's pipelined channel (../node-rpc.ts): an HTTP connection upgraded
// to `cortado-rpc`, on which each frame is one call of the internal API, answered by the same
// code as over HTTP (node-http.ts `answer`). Calls run concurrently, as HTTP requests would;
// answers go back as they are ready, those released together in one write.
import { type IncomingMessage, type Server } from 'node:http'
import { type Duplex } from 'node:stream'
import { type Logger } from '../../util/log.ts'
import { DbError } from '../errors.ts'
import {
  CoalescingWriter,
  decodeRequest,
  encodeResponse,
  FrameReader,
  RPC_UPGRADE,
  type RpcRequest,
} from '../node-rpc.ts'
import { CLUSTER_SECRET_HEADER, hasClusterSecret } from '../node-api.ts'
import { answer, type NodeAnswer, type NodeHttpContext, parseBody } from './node-http.ts'

/** The answer to the upgrade request: the connection speaks frames from the next byte on. */
const SWITCHING = `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${RPC_UPGRADE}\r\n\r\n`

/**
 * Serves the router's channel on the node's HTTP server (other upgrades are refused). Returns
 * what closes the channels: the HTTP server no longer tracks an upgraded connection.
 */
export function acceptRpc(server: Server, node: NodeHttpContext, log: Logger): { closeAll(): void } {
  const open = new Set<Duplex>()
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.headers.upgrade?.toLowerCase() !== RPC_UPGRADE) {
      socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')
      return
    }
    if (!hasClusterSecret(node.clusterSecret, req.headers[CLUSTER_SECRET_HEADER])) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')
      return
    }
    open.add(socket)
    socket.once('close', () => open.delete(socket))
    serveRpc(node, socket, head, log)
  })
  return {
    closeAll: () => {
      for (const socket of open) socket.destroy()
    },
  }
}

function serveRpc(node: NodeHttpContext, socket: Duplex, head: Buffer, log: Logger): void {
  const reader = new FrameReader()
  const out = new CoalescingWriter((data) => socket.write(data), 'microtasks')
  let closed = false
  socket.on('close', () => {
    closed = true
    out.discard()
  })
  socket.on('error', () => socket.destroy())
  const onData = (chunk: Buffer) => {
    let frames: Buffer[]
    try {
      frames = reader.push(chunk)
    } catch (error) {
      // A stream that does not frame is not one we can answer on: the router reconnects.
      log.warn('router channel closed: bad frame', { error: String(error) })
      socket.destroy()
      return
    }
    for (const frame of frames) {
      let call: RpcRequest
      try {
        call = decodeRequest(frame)
      } catch (error) {
        log.warn('router channel closed: bad frame', { error: String(error) })
        socket.destroy()
        return
      }
      void run(node, call, log).then((a) => {
        if (!closed) out.push(encodeResponse(call.id, a.status, a.headers, a.text))
      })
    }
  }
  socket.write(SWITCHING)
  socket.on('data', onData)
  if (head.length > 0) onData(head)
}

async function run(node: NodeHttpContext, call: RpcRequest, log: Logger): Promise<NodeAnswer> {
  const url = new URL(call.path, 'http://node')
  try {
    const parts = url.pathname
      .split('/')
      .filter((p) => p.length > 0)
      .map(decodeURIComponent)
    const body = call.method === 'POST' ? parseBody(call.body) : undefined
    return await answer(node, call.method, url, parts, body)
  } catch (error) {
    const e =
      error instanceof DbError
        ? error
        : new DbError(
            error instanceof URIError ? 'BAD_REQUEST' : 'INTERNAL',
            error instanceof Error ? error.message : String(error),
          )
    if (e.code === 'INTERNAL')
      log.error('node request failed', { url: call.path, error: String(error), stack: (error as Error).stack })
    return { status: e.status, text: JSON.stringify(e.toJSON()), headers: null }
  }
}
