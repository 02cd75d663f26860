// The broker's durable ACLs: every change is on disk when it returns, in one write per call,
// duplicates are stored once, deletes return what they removed, and a corrupt file stops the
// broker with its path.
import assert from 'node:assert/strict'
import { readFileSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { ACLS_FILE, AclFileError, AclStore, InvalidAclError } from '../../../src/broker/security/acl-store.ts'
import {
  type AclBinding,
  type AclFilter,
  ANY_ACL_FILTER,
  AclOperation,
  PatternType,
  Permission,
  ResourceType,
} from '../../../src/broker/security/acls.ts'
import { removeDir, tempDir } from '../../helpers/broker-process.ts'

function withDir(fn: (dir: string) => void): void {
  const dir = tempDir('acl-store')
  try {
    fn(dir)
  } finally {
    removeDir(dir)
  }
}

function acl(over: Partial<AclBinding> = {}): AclBinding {
  return {
    resourceType: ResourceType.TOPIC,
    resourceName: 'orders',
    patternType: PatternType.LITERAL,
    principal: 'User:alice',
    host: '*',
    operation: AclOperation.READ,
    permission: Permission.ALLOW,
    ...over,
  }
}

function filter(over: Partial<AclFilter>): AclFilter {
  return { ...ANY_ACL_FILTER, ...over }
}

const alice = acl()
const bobWrite = acl({ principal: 'User:bob', operation: AclOperation.WRITE })
const denyPrefix = acl({ resourceName: 'orders-', patternType: PatternType.PREFIXED, permission: Permission.DENY })
const group = acl({ resourceType: ResourceType.GROUP, resourceName: 'billing', principal: 'User:*', host: '10.0.0.1' })

test('a missing file is an empty store', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    assert.deepEqual(store.list(), [])
    assert.equal(store.version, 0)
    assert.throws(() => statSync(join(dir, ACLS_FILE)), { code: 'ENOENT' })
  })
})

test('ACLs survive a reopen, in order, in a 0600 file of names', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    store.create([alice, bobWrite])
    store.create([denyPrefix, group])
    assert.deepEqual(AclStore.open(dir).list(), [alice, bobWrite, denyPrefix, group])
    const path = join(dir, ACLS_FILE)
    assert.equal(statSync(path).mode & 0o777, 0o600)
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { format: number; acls: unknown[] }
    assert.equal(doc.format, 1)
    assert.deepEqual(doc.acls[0], {
      resourceType: 'TOPIC',
      resourceName: 'orders',
      patternType: 'LITERAL',
      principal: 'User:alice',
      host: '*',
      operation: 'READ',
      permission: 'ALLOW',
    })
  })
})

test('the store keeps its own copies', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    const mine = acl()
    store.create([mine])
    mine.resourceName = 'changed'
    assert.equal(store.list()[0].resourceName, 'orders')
    assert.throws(() => ((store.list() as AclBinding[])[0] = bobWrite))
  })
})

test('duplicates are stored once; a call adding nothing writes nothing', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    store.create([alice, { ...alice }, bobWrite])
    assert.deepEqual(store.list(), [alice, bobWrite])
    assert.equal(store.version, 1)
    const path = join(dir, ACLS_FILE)
    writeFileSync(path, '{"format": 1, "acls": []}\n') // a marker: a write would replace it
    store.create([{ ...bobWrite }, alice])
    assert.equal(store.version, 1)
    assert.equal(readFileSync(path, 'utf8'), '{"format": 1, "acls": []}\n')
    store.create([alice, group])
    assert.equal(store.version, 2)
    assert.deepEqual(AclStore.open(dir).list(), [alice, bobWrite, group])
  })
})

test('create refuses an invalid binding and stores none of the call', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    const bad = acl({ resourceType: ResourceType.CLUSTER, resourceName: 'c' })
    assert.throws(
      () => store.create([alice, bad]),
      (e) => e instanceof InvalidAclError && e.code === 'INVALID_ACL' && /kafka-cluster/.test(e.message),
    )
    assert.deepEqual(store.list(), [])
    assert.equal(store.version, 0)
    assert.throws(() => statSync(join(dir, ACLS_FILE)), { code: 'ENOENT' })
  })
})

test('delete removes and returns what the filter selects, durably; nothing matched writes nothing', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    store.create([alice, bobWrite, denyPrefix, group])
    const removed = store.delete(filter({ resourceType: ResourceType.TOPIC, principal: 'User:alice' }))
    assert.deepEqual(removed, [alice, denyPrefix])
    assert.equal(store.version, 2)
    assert.deepEqual(AclStore.open(dir).list(), [bobWrite, group])
    assert.deepEqual(store.delete(filter({ principal: 'User:carol' })), [])
    assert.equal(store.version, 2)
    assert.deepEqual(store.delete(ANY_ACL_FILTER), [bobWrite, group])
    assert.deepEqual(AclStore.open(dir).list(), [])
    assert.equal(store.version, 3)
  })
})

test('describe returns what the filter selects, MATCH included', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    store.create([alice, bobWrite, denyPrefix, group])
    assert.deepEqual(store.describe(ANY_ACL_FILTER), [alice, bobWrite, denyPrefix, group])
    assert.deepEqual(store.describe(filter({ resourceType: ResourceType.GROUP })), [group])
    const applying = filter({
      resourceType: ResourceType.TOPIC,
      resourceName: 'orders-eu',
      patternType: PatternType.MATCH,
    })
    assert.deepEqual(store.describe(applying), [denyPrefix])
    assert.deepEqual(store.describe(filter({ permission: Permission.DENY })), [denyPrefix])
  })
})

test('version increments on every change', () => {
  withDir((dir) => {
    const store = AclStore.open(dir)
    store.create([alice])
    store.create([bobWrite, group])
    store.delete(filter({ principal: 'User:bob' }))
    assert.equal(store.version, 3)
  })
})

test('a corrupt file fails open with an error naming the path', () => {
  withDir((dir) => {
    const path = join(dir, ACLS_FILE)
    const good = {
      resourceType: 'TOPIC',
      resourceName: 'orders',
      patternType: 'LITERAL',
      principal: 'User:alice',
      host: '*',
      operation: 'READ',
      permission: 'ALLOW',
    }
    const corrupt = [
      '{"format": 1, "acls": [',
      '[]',
      JSON.stringify({ format: 2, acls: [] }),
      JSON.stringify({ format: 1, acls: {} }),
      JSON.stringify({ format: 1, acls: [null] }),
      JSON.stringify({ format: 1, acls: [{ ...good, resourceType: 'PLANET' }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, operation: 3 }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, operation: 'read' }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, principal: undefined }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, permission: 'ANY' }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, resourceName: '' }] }),
      JSON.stringify({ format: 1, acls: [{ ...good, principal: 'alice' }] }),
    ]
    for (const text of corrupt) {
      writeFileSync(path, text)
      assert.throws(
        () => AclStore.open(dir),
        (e) =>
          e instanceof AclFileError &&
          e.code === 'CORRUPT_ACLS' &&
          e.path === path &&
          e.message.startsWith(`${path} is corrupt: `),
        text,
      )
    }
    writeFileSync(path, JSON.stringify({ format: 1, acls: [good, good] }))
    assert.deepEqual(AclStore.open(dir).list(), [alice], 'a hand-edited duplicate is harmless')
  })
})
