// The import rules of eslint.config.js are in force: each snippet below breaks one and must be
// reported, and an allowed import must not be. Guards against a config edit that silently
// drops a rule (flat config replaces a rule's options for overlapping file groups).
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ESLint } from 'eslint'
import tseslint from 'typescript-eslint'
import { ROOT } from '../helpers/broker-process.ts'

// The snippets are not files of the TypeScript project, so type-aware linting is switched off;
// the import rules need no types.
const eslint = new ESLint({ cwd: ROOT, overrideConfig: tseslint.configs.disableTypeChecked })

async function restrictedImports(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath })
  const fatal = result.messages.filter((m) => m.fatal === true)
  assert.deepEqual(fatal, [], 'the snippet must parse')
  return result.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message)
}

const cases: { file: string; from: string; forbidden: boolean }[] = [
  { file: 'src/db/replication/x.ts', from: '../storage/replica-store.ts', forbidden: true },
  { file: 'src/db/replication/x.ts', from: '../../broker/broker.ts', forbidden: true },
  { file: 'src/db/storage/x.ts', from: '../controller/controller-state.ts', forbidden: true },
  { file: 'src/db/storage/x.ts', from: '../../protocol/errors.ts', forbidden: true },
  { file: 'src/db/router/x.ts', from: '../../broker/broker.ts', forbidden: true },
  { file: 'src/client/x.ts', from: '../protocol/apis.ts', forbidden: true },
  { file: 'src/protocol/x.ts', from: '../broker/server.ts', forbidden: true },
  { file: 'src/db/storage/x.ts', from: '../replication/envelope.ts', forbidden: false },
  { file: 'src/db/storage/x.ts', from: '../metadata/model.ts', forbidden: false },
  { file: 'src/broker/x.ts', from: '../protocol/apis.ts', forbidden: false },
]

for (const c of cases) {
  test(`${c.file} importing ${c.from} is ${c.forbidden ? 'refused' : 'allowed'}`, async () => {
    const messages = await restrictedImports(c.file, `export * from '${c.from}'\n`)
    assert.equal(messages.length, c.forbidden ? 1 : 0, messages.join('\n'))
  })
}
