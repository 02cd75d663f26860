// The broker's durable SCRAM credentials: every change is on disk when it returns, the file
// holds keys and never passwords, and a corrupt file stops the broker with its path.
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import {
  SCRAM_CREDENTIALS_FILE,
  ScramCredentialFileError,
  ScramCredentialStore,
} from '../../../src/broker/security/scram-credentials.ts'
import { ScramClient, ScramServer, scramCredential } from '../../../src/broker/security/scram.ts'
import { removeDir, tempDir } from '../../helpers/broker-process.ts'

function withDir(fn: (dir: string) => void): void {
  const dir = tempDir('scram-credentials')
  try {
    fn(dir)
  } finally {
    removeDir(dir)
  }
}

test('credentials survive a reopen and still authenticate', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    store.set('alice', scramCredential('SCRAM-SHA-256', 'alice-secret'))
    store.set('alice', scramCredential('SCRAM-SHA-512', 'alice-secret', 8192))
    const reopened = ScramCredentialStore.open(dir)
    assert.deepEqual(reopened.get('alice', 'SCRAM-SHA-256'), store.get('alice', 'SCRAM-SHA-256'))
    assert.deepEqual(reopened.get('alice', 'SCRAM-SHA-512'), store.get('alice', 'SCRAM-SHA-512'))
    const server = new ScramServer('SCRAM-SHA-512', (u) => reopened.get(u, 'SCRAM-SHA-512'))
    const client = new ScramClient('SCRAM-SHA-512', 'alice', 'alice-secret')
    client.verify(server.step(client.final(server.step(client.first()))))
    assert.equal(server.username, 'alice')
  })
})

test('a missing file is an empty store', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    assert.equal(store.get('alice', 'SCRAM-SHA-256'), undefined)
    assert.deepEqual(store.describe(), new Map())
    assert.equal(store.version, 0)
  })
})

test('set replaces the credential of its mechanism only', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    const sha512 = scramCredential('SCRAM-SHA-512', 'x')
    store.set('bob', scramCredential('SCRAM-SHA-256', 'old'))
    store.set('bob', sha512)
    const replacement = scramCredential('SCRAM-SHA-256', 'new', 5000)
    store.set('bob', replacement)
    const reopened = ScramCredentialStore.open(dir)
    assert.deepEqual(reopened.get('bob', 'SCRAM-SHA-256'), replacement)
    assert.deepEqual(reopened.get('bob', 'SCRAM-SHA-512'), sha512)
  })
})

test('delete removes one mechanism durably; deleting what is absent is false', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    store.set('carol', scramCredential('SCRAM-SHA-256', 'pw'))
    store.set('carol', scramCredential('SCRAM-SHA-512', 'pw'))
    assert.equal(store.delete('carol', 'SCRAM-SHA-256'), true)
    assert.equal(store.delete('carol', 'SCRAM-SHA-256'), false)
    assert.equal(store.delete('nobody', 'SCRAM-SHA-512'), false)
    let reopened = ScramCredentialStore.open(dir)
    assert.equal(reopened.get('carol', 'SCRAM-SHA-256'), undefined)
    assert.notEqual(reopened.get('carol', 'SCRAM-SHA-512'), undefined)
    assert.equal(store.delete('carol', 'SCRAM-SHA-512'), true)
    reopened = ScramCredentialStore.open(dir)
    assert.deepEqual(reopened.describe(), new Map())
  })
})

test('describe lists mechanisms and iterations per user, sorted, optionally for given users', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    store.set('zed', scramCredential('SCRAM-SHA-512', 'pw', 4096))
    store.set('amy', scramCredential('SCRAM-SHA-512', 'pw', 6000))
    store.set('amy', scramCredential('SCRAM-SHA-256', 'pw', 5000))
    assert.deepEqual(
      store.describe(),
      new Map([
        [
          'amy',
          [
            { mechanism: 'SCRAM-SHA-256', iterations: 5000 },
            { mechanism: 'SCRAM-SHA-512', iterations: 6000 },
          ],
        ],
        ['zed', [{ mechanism: 'SCRAM-SHA-512', iterations: 4096 }]],
      ]),
    )
    assert.deepEqual(
      store.describe(['zed', 'ghost']),
      new Map([['zed', [{ mechanism: 'SCRAM-SHA-512', iterations: 4096 }]]]),
    )
    assert.deepEqual(store.describe([]), new Map())
  })
})

test('version increments on every change and not on a no-op delete', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    assert.equal(store.version, 0)
    store.set('a', scramCredential('SCRAM-SHA-256', 'pw'))
    assert.equal(store.version, 1)
    store.set('a', scramCredential('SCRAM-SHA-256', 'pw2'))
    assert.equal(store.version, 2)
    store.delete('a', 'SCRAM-SHA-512')
    assert.equal(store.version, 2)
    store.delete('a', 'SCRAM-SHA-256')
    assert.equal(store.version, 3)
  })
})

test('the file is mode 0600, holds keys in base64 and never the password', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    const password = 'very-distinctive-password'
    const credential = scramCredential('SCRAM-SHA-256', password)
    store.set('dave', credential)
    const path = join(dir, SCRAM_CREDENTIALS_FILE)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const content = readFileSync(path, 'utf8')
    assert.ok(!content.includes(password))
    assert.ok(!content.includes(Buffer.from(password).toString('base64')))
    assert.deepEqual(JSON.parse(content), {
      format: 1,
      users: {
        dave: {
          'SCRAM-SHA-256': {
            salt: credential.salt.toString('base64'),
            iterations: 4096,
            storedKey: credential.storedKey.toString('base64'),
            serverKey: credential.serverKey.toString('base64'),
          },
        },
      },
    })
  })
})

test('a user named __proto__ is stored like any other', () => {
  withDir((dir) => {
    ScramCredentialStore.open(dir).set('__proto__', scramCredential('SCRAM-SHA-256', 'pw'))
    assert.deepEqual(
      ScramCredentialStore.open(dir).describe(),
      new Map([['__proto__', [{ mechanism: 'SCRAM-SHA-256', iterations: 4096 }]]]),
    )
  })
})

test('the store keeps its own copy of the credential buffers', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    const credential = scramCredential('SCRAM-SHA-256', 'pw')
    const storedKey = Buffer.from(credential.storedKey)
    store.set('erin', credential)
    credential.storedKey.fill(0)
    assert.deepEqual(store.get('erin', 'SCRAM-SHA-256')?.storedKey, storedKey)
  })
})

test('a corrupt file fails open with an error naming the path', () => {
  withDir((dir) => {
    const path = join(dir, SCRAM_CREDENTIALS_FILE)
    const good = scramCredential('SCRAM-SHA-256', 'pw')
    const entry = {
      salt: good.salt.toString('base64'),
      iterations: 4096,
      storedKey: good.storedKey.toString('base64'),
      serverKey: good.serverKey.toString('base64'),
    }
    const corrupt = [
      '{"format": 1, "users": {',
      '[]',
      JSON.stringify({ format: 2, users: {} }),
      JSON.stringify({ format: 1, users: { a: {} } }),
      JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-1': entry } } }),
      JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-256': { ...entry, iterations: '4096' } } } }),
      JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-256': { ...entry, iterations: 10 } } } }),
      JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-256': { ...entry, storedKey: 'not base64!' } } } }),
      JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-512': entry } } }),
      JSON.stringify({ format: 1, users: { '': { 'SCRAM-SHA-256': entry } } }),
    ]
    for (const text of corrupt) {
      writeFileSync(path, text)
      assert.throws(
        () => ScramCredentialStore.open(dir),
        (e) =>
          e instanceof ScramCredentialFileError &&
          e.code === 'CORRUPT_SCRAM_CREDENTIALS' &&
          e.path === path &&
          e.message.startsWith(`${path} is corrupt: `),
        text,
      )
    }
    writeFileSync(path, JSON.stringify({ format: 1, users: { a: { 'SCRAM-SHA-256': entry } } }))
    assert.deepEqual(ScramCredentialStore.open(dir).get('a', 'SCRAM-SHA-256'), good)
  })
})

test('set refuses an empty user name and an inconsistent credential, and writes nothing', () => {
  withDir((dir) => {
    const store = ScramCredentialStore.open(dir)
    assert.throws(() => store.set('', scramCredential('SCRAM-SHA-256', 'pw')), { code: 'UNACCEPTABLE_CREDENTIAL' })
    const wrong = { ...scramCredential('SCRAM-SHA-256', 'pw'), mechanism: 'SCRAM-SHA-512' as const }
    assert.throws(() => store.set('a', wrong), { code: 'UNACCEPTABLE_CREDENTIAL' })
    assert.equal(store.version, 0)
    assert.throws(() => statSync(join(dir, SCRAM_CREDENTIALS_FILE)), { code: 'ENOENT' })
  })
})
