// A test network of Linux network namespaces, for network partitions rather than process kills:
// each host is a namespace with one veth link to a bridge in a "switch" namespace, on a /24 of its
// own. Links are cut and healed with nftables rules inside the hosts (both ways, or one way for an
// asymmetric cut), or by taking a host's link down. Traffic stays between the namespaces this
// helper made; `destroy()` removes them all (and a later run removes those of a run that died).
// Needs root, `ip` (iproute2) and `nft` (nftables): scripts/system-tools.sh installs them.
import { spawn, execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process'

const PREFIX = 'cortado-'
/** Addresses inside the test namespaces only: 10.213.<subnet>.<host>. */
const SUBNET_BASE = '10.213'

export interface Host {
  readonly name: string
  readonly ns: string
  readonly ip: string
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] })
}

function nft(ns: string, script: string): void {
  execFileSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: script, stdio: ['pipe', 'ignore', 'pipe'] })
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Removes the namespaces of earlier runs whose process is gone (a test killed mid-way). */
function removeStaleNamespaces(): void {
  const names = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => line.split(' ')[0])
  for (const name of names) {
    const owner = new RegExp(`^${PREFIX}(\\d+)-`).exec(name)
    if (owner !== null && !pidAlive(Number(owner[1]))) ip('netns', 'del', name)
  }
}

export class TestNetwork {
  readonly hosts = new Map<string, Host>()
  readonly #switch: string
  readonly #subnet: number
  readonly #children = new Set<ChildProcess>()
  #destroyed = false

  private constructor(id: string, subnet: number) {
    this.#switch = `${id}sw`
    this.#subnet = subnet
  }

  /** A network with the given hosts, each able to reach every other until cut. */
  static create(hostNames: string[]): TestNetwork {
    removeStaleNamespaces()
    const id = `${PREFIX}${process.pid}-${Math.floor(Math.random() * 1e6)}-`
    const net = new TestNetwork(id, 1 + Math.floor(Math.random() * 250))
    try {
      ip('netns', 'add', net.#switch)
      ip('-n', net.#switch, 'link', 'add', 'br0', 'type', 'bridge')
      ip('-n', net.#switch, 'link', 'set', 'br0', 'up')
      hostNames.forEach((name, i) => net.#addHost(id, name, i + 1))
    } catch (error) {
      net.destroy()
      throw error
    }
    return net
  }

  #addHost(id: string, name: string, index: number): void {
    const ns = `${id}${index}`
    const host: Host = { name, ns, ip: `${SUBNET_BASE}.${this.#subnet}.${index}` }
    ip('netns', 'add', ns)
    // veth names are limited to 15 characters; both ends start in the host and one moves to the switch.
    ip('-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `p${index}`)
    ip('-n', ns, 'link', 'set', `p${index}`, 'netns', this.#switch)
    ip('-n', this.#switch, 'link', 'set', `p${index}`, 'master', 'br0', 'up')
    ip('-n', ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0')
    ip('-n', ns, 'link', 'set', 'eth0', 'up')
    ip('-n', ns, 'link', 'set', 'lo', 'up')
    nft(
      ns,
      'table inet partition {\n chain input { type filter hook input priority 0; }\n chain output { type filter hook output priority 0; }\n}\n',
    )
    this.hosts.set(name, host)
  }

  /**
   * Connects the test runner's own namespace to the network (a veth into the switch, address .250),
   * so the test can talk to the hosts directly. Removed with the switch namespace by destroy().
   */
  connectTestRunner(): void {
    const link = `ct${this.#subnet}x${process.pid % 10000}`
    ip('link', 'add', link, 'type', 'veth', 'peer', 'name', 'runner', 'netns', this.#switch)
    ip('-n', this.#switch, 'link', 'set', 'runner', 'master', 'br0', 'up')
    ip('addr', 'add', `${SUBNET_BASE}.${this.#subnet}.250/24`, 'dev', link)
    ip('link', 'set', link, 'up')
  }

  host(name: string): Host {
    const h = this.hosts.get(name)
    if (h === undefined) throw new Error(`no host ${name} in the test network`)
    return h
  }

  /** Runs a command inside a host's namespace; the process is killed by destroy() if still running. */
  spawn(hostName: string, command: string, args: string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.host(hostName).ns, command, ...args], options)
    this.#children.add(child)
    child.once('exit', () => this.#children.delete(child))
    return child
  }

  /** Drops the traffic from `from` to `to`; both ways unless `oneWay`. */
  cut(from: string, to: string, options: { oneWay?: boolean } = {}): void {
    const a = this.host(from)
    const b = this.host(to)
    nft(a.ns, `add rule inet partition output ip daddr ${b.ip} drop\n`)
    if (options.oneWay !== true) nft(b.ns, `add rule inet partition output ip daddr ${a.ip} drop\n`)
  }

  /** Cuts a host off from every other host (its link stays up: connections hang rather than reset). */
  isolate(name: string): void {
    for (const other of this.hosts.keys()) if (other !== name) this.cut(name, other)
  }

  /** Removes every cut. */
  healAll(): void {
    for (const h of this.hosts.values()) {
      nft(h.ns, 'flush chain inet partition input\nflush chain inet partition output\n')
    }
  }

  /** Takes a host's link down (the kernel then refuses to send: errors, not silence) or up. */
  setLink(name: string, up: boolean): void {
    ip('-n', this.host(name).ns, 'link', 'set', 'eth0', up ? 'up' : 'down')
  }

  destroy(): void {
    if (this.#destroyed) return
    this.#destroyed = true
    for (const child of this.#children) child.kill('SIGKILL')
    for (const h of this.hosts.values()) ip('netns', 'del', h.ns)
    try {
      ip('netns', 'del', this.#switch)
    } catch {
      // Not created (create failed early).
    }
  }
}
