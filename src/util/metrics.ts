// Prometheus metrics: one registry per process, served as text on /metrics by a small HTTP
// listener.
import { createServer, type Server } from 'node:http'
import { Registry, collectDefaultMetrics } from 'prom-client'

export function createRegistry(): Registry {
  const registry = new Registry()
  // The event-loop lag histogram samples with a timer: prom-client's default of every 10 ms wakes
  // an idle process 100 times a second, which cost each of a cluster's processes ~0.6% of a core
  // here; every 100 ms still sees any stall of the loop longer than that.
  collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 100 })
  return registry
}

/** Serves GET /metrics on host:port; resolves once listening. */
export async function serveMetrics(registry: Registry, host: string, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try GET /metrics\n')
      return
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err)),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => resolve())
  })
  return server
}
