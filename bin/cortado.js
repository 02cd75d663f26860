#!/usr/bin/env node
// Entry point of the `cortado` command. Cortado needs Node.js 24, which the project brings as
// the npm package `node`; if this was started by an older node, re-run under that one.
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const major = Number(process.versions.node.split('.')[0])
if (major >= 24) {
  await import('../src/cli/main.ts')
} else {
  const node24 = join(root, 'node_modules', '.bin', 'node')
  if (!existsSync(node24)) {
    process.stderr.write('cortado needs Node.js 24: run `npm install` in ' + root + '\n')
    process.exit(1)
  }
  const child = spawn(node24, [join(root, 'src', 'cli', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' })
  for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => child.kill(signal))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
