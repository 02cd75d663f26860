// Free TCP ports on a host for the benchmarks' servers (bench:db, bench:db-floor).
import { createServer, type Server } from 'node:net'

/** `n` free ports on `host`, all held open at once so that no two are the same. */
export async function freePorts(host: string, n: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Server>((resolve, reject) => {
          const s = createServer()
          s.once('error', reject)
          s.listen(0, host, () => resolve(s))
        }),
    ),
  )
  const ports = servers.map((s) => {
    const a = s.address()
    return typeof a === 'object' && a !== null ? a.port : 0
  })
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}
