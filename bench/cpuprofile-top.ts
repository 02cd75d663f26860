// Summarizes a V8 .cpuprofile (from `node bench/broker.ts --cpu-prof <dir>`, which runs the broker
// with --cpu-prof): self time by function and by file, and total (inclusive) time of the
// broker's own functions.
//
//   node bench/cpuprofile-top.ts <file.cpuprofile> [top N]
import { readFileSync } from 'node:fs'

interface CallFrame {
  functionName: string
  url: string
  lineNumber: number
}

interface ProfileNode {
  id: number
  callFrame: CallFrame
  children?: number[]
}

interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  timeDeltas: number[]
  startTime: number
  endTime: number
}

const file = process.argv[2]
if (file === undefined) {
  console.error('usage: node bench/cpuprofile-top.ts <file.cpuprofile> [top N]')
  process.exit(2)
}
const top = Number(process.argv[3] ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile

const byId = new Map<number, ProfileNode>()
const parent = new Map<number, number>()
for (const n of profile.nodes) {
  byId.set(n.id, n)
  for (const c of n.children ?? []) parent.set(c, n.id)
}

// Self time per node from the samples (each sample's delta is the time until the next sample).
const selfUs = new Map<number, number>()
let totalUs = 0
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt)
  totalUs += dt
}

const short = (url: string) =>
  url.replace(/^file:\/\/.*?\/(src|bench|node_modules)\//, '$1/').replace(/^node:/, 'node:')
const label = (f: CallFrame) =>
  `${f.functionName || '(anonymous)'} ${short(f.url)}${f.url ? `:${f.lineNumber + 1}` : ''}`

const selfByFn = new Map<string, number>()
const selfByFile = new Map<string, number>()
const inclusiveByFn = new Map<string, number>()
for (const [id, us] of selfUs) {
  const node = byId.get(id)!
  const key = label(node.callFrame)
  selfByFn.set(key, (selfByFn.get(key) ?? 0) + us)
  const fileKey = node.callFrame.url === '' ? node.callFrame.functionName : short(node.callFrame.url)
  selfByFile.set(fileKey, (selfByFile.get(fileKey) ?? 0) + us)
  // Inclusive: credit every distinct function on the stack once.
  const seen = new Set<string>()
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = label(byId.get(cur)!.callFrame)
    if (seen.has(k)) continue
    seen.add(k)
    inclusiveByFn.set(k, (inclusiveByFn.get(k) ?? 0) + us)
  }
}

const pct = (us: number) => `${((us / totalUs) * 100).toFixed(1).padStart(5)}%`
const print = (title: string, m: Map<string, number>, n: number, filter?: (k: string) => boolean) => {
  console.log(`\n${title}`)
  const entries = [...m]
    .filter(([k]) => filter === undefined || filter(k))
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
  for (const [k, us] of entries) console.log(`  ${pct(us)}  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`)
}

console.log(`profile ${file}: ${(totalUs / 1e6).toFixed(2)} s sampled`)
print('self time by function', selfByFn, top)
print('self time by file', selfByFile, top)
print('inclusive time, project functions', inclusiveByFn, top, (k) => / (src|bench)\//.test(k))
