// Kafka's ACL semantics as the broker applies them: which ACLs apply to a resource, DENY before
// ALLOW, the operations an ALLOW implies, allow.everyone.if.no.acl.found, super users, the decision
// cache, authorizeByResourceType, and the CreateAcls checks and DescribeAcls/DeleteAcls filters.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type AclBinding,
  type AclFilter,
  ANY_ACL_FILTER,
  AclOperation,
  PatternType,
  Permission,
  ResourceType,
  formatBinding,
  matchesFilter,
  operationByName,
  operationName,
  patternTypeByName,
  permissionByName,
  permissionName,
  resourceTypeByName,
  resourceTypeName,
  validateBinding,
  validateFilter,
} from '../../../src/broker/security/acls.ts'
import {
  AUTHORIZER_CACHE_LIMIT,
  type AuthorizationRequest,
  Authorizer,
  parseSuperUsers,
} from '../../../src/broker/security/authorizer.ts'

const { TOPIC, GROUP, CLUSTER, TRANSACTIONAL_ID } = ResourceType
const { LITERAL, PREFIXED } = PatternType
const { ALLOW, DENY } = Permission
const { ALL, READ, WRITE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS, ALTER, DELETE, CREATE } = AclOperation

/** An ALLOW READ for User:alice from anywhere on the literal topic 'orders', changed by `over`. */
function acl(over: Partial<AclBinding> = {}): AclBinding {
  return {
    resourceType: TOPIC,
    resourceName: 'orders',
    patternType: LITERAL,
    principal: 'User:alice',
    host: '*',
    operation: READ,
    permission: ALLOW,
    ...over,
  }
}

/** User:alice from 10.0.0.1 reading the topic 'orders', changed by `over`. */
function req(over: Partial<AuthorizationRequest> = {}): AuthorizationRequest {
  return {
    principal: 'User:alice',
    host: '10.0.0.1',
    operation: READ,
    resourceType: TOPIC,
    resourceName: 'orders',
    ...over,
  }
}

function authorizer(acls: AclBinding[], over: { superUsers?: string[]; allowEveryone?: boolean } = {}): Authorizer {
  return new Authorizer({
    superUsers: over.superUsers ?? [],
    allowEveryoneIfNoAclFound: over.allowEveryone ?? false,
    acls: () => acls,
    version: () => 0,
  })
}

interface Case {
  name: string
  acls: AclBinding[]
  request: Partial<AuthorizationRequest>
  expected: boolean
  superUsers?: string[]
  allowEveryone?: boolean
}

const cases: Case[] = [
  { name: 'super user, no ACLs', acls: [], request: {}, superUsers: ['User:alice'], expected: true },
  {
    name: 'super user despite a DENY ALL',
    acls: [acl({ operation: ALL, permission: DENY })],
    request: { operation: WRITE },
    superUsers: ['User:root', 'User:alice'],
    expected: true,
  },
  { name: 'no ACL on the resource, allowEveryone false', acls: [], request: {}, expected: false },
  { name: 'no ACL on the resource, allowEveryone true', acls: [], request: {}, allowEveryone: true, expected: true },
  {
    name: 'ACLs on other resources only, allowEveryone true',
    acls: [acl({ resourceName: 'payments', permission: DENY }), acl({ resourceType: GROUP, permission: DENY })],
    request: {},
    allowEveryone: true,
    expected: true,
  },
  {
    name: 'an ACL for another principal makes allowEveryone not apply',
    acls: [acl({ principal: 'User:bob' })],
    request: {},
    allowEveryone: true,
    expected: false,
  },
  {
    name: 'an ACL for another operation makes allowEveryone not apply',
    acls: [acl({ operation: WRITE })],
    request: {},
    allowEveryone: true,
    expected: false,
  },
  { name: 'literal match', acls: [acl()], request: {}, expected: true },
  { name: 'literal non-match', acls: [acl()], request: { resourceName: 'orders-eu' }, expected: false },
  { name: 'literal of another resource type', acls: [acl({ resourceType: GROUP })], request: {}, expected: false },
  {
    name: 'wildcard resource',
    acls: [acl({ resourceName: '*' })],
    request: { resourceName: 'anything' },
    expected: true,
  },
  {
    name: 'wildcard resource of another type',
    acls: [acl({ resourceName: '*', resourceType: GROUP })],
    request: {},
    expected: false,
  },
  {
    name: 'prefix matches a longer name',
    acls: [acl({ patternType: PREFIXED })],
    request: { resourceName: 'orders-eu' },
    expected: true,
  },
  { name: 'prefix matches the name itself', acls: [acl({ patternType: PREFIXED })], request: {}, expected: true },
  {
    name: 'prefix does not match a shorter name',
    acls: [acl({ patternType: PREFIXED })],
    request: { resourceName: 'order' },
    expected: false,
  },
  {
    name: 'literal "orders" is not a prefix',
    acls: [acl()],
    request: { resourceName: 'orders-eu' },
    expected: false,
  },
  {
    name: 'principal User:* matches anyone',
    acls: [acl({ principal: 'User:*' })],
    request: { principal: 'User:bob' },
    expected: true,
  },
  { name: 'another principal does not match', acls: [acl()], request: { principal: 'User:bob' }, expected: false },
  { name: 'a specific host matches itself', acls: [acl({ host: '10.0.0.1' })], request: {}, expected: true },
  { name: 'a specific host does not match another', acls: [acl({ host: '10.0.0.2' })], request: {}, expected: false },
  {
    name: 'DENY wins over ALLOW on the same resource',
    acls: [acl(), acl({ permission: DENY })],
    request: {},
    expected: false,
  },
  {
    name: 'DENY on the wildcard resource wins over ALLOW on the literal',
    acls: [acl(), acl({ resourceName: '*', permission: DENY })],
    request: {},
    expected: false,
  },
  {
    name: 'DENY by prefix wins over ALLOW on the literal',
    acls: [acl({ resourceName: 'orders-eu' }), acl({ patternType: PREFIXED, permission: DENY })],
    request: { resourceName: 'orders-eu' },
    expected: false,
  },
  {
    name: 'DENY for User:* from * wins over an ALLOW for the principal',
    acls: [acl({ host: '10.0.0.1' }), acl({ principal: 'User:*', permission: DENY })],
    request: {},
    expected: false,
  },
  {
    name: 'DENY ALL denies READ',
    acls: [acl(), acl({ operation: ALL, permission: DENY })],
    request: {},
    expected: false,
  },
  {
    name: 'DENY from another host does not apply',
    acls: [acl(), acl({ host: '10.0.0.9', permission: DENY })],
    request: {},
    expected: true,
  },
  {
    name: 'DENY for another principal does not apply',
    acls: [acl(), acl({ principal: 'User:bob', permission: DENY })],
    request: {},
    expected: true,
  },
  { name: 'ALLOW READ implies DESCRIBE', acls: [acl()], request: { operation: DESCRIBE }, expected: true },
  { name: 'ALLOW READ does not imply WRITE', acls: [acl()], request: { operation: WRITE }, expected: false },
  ...[WRITE, DELETE, ALTER].map((operation) => ({
    name: `ALLOW ${operationName(operation)} implies DESCRIBE`,
    acls: [acl({ operation })],
    request: { operation: DESCRIBE },
    expected: true,
  })),
  {
    name: 'ALLOW CREATE does not imply DESCRIBE',
    acls: [acl({ operation: CREATE })],
    request: { operation: DESCRIBE },
    expected: false,
  },
  { name: 'ALLOW DESCRIBE does not imply READ', acls: [acl({ operation: DESCRIBE })], request: {}, expected: false },
  {
    name: 'DENY READ does not deny DESCRIBE allowed by ALLOW DESCRIBE',
    acls: [acl({ permission: DENY }), acl({ operation: DESCRIBE })],
    request: { operation: DESCRIBE },
    expected: true,
  },
  {
    name: 'DENY DESCRIBE denies DESCRIBE implied by ALLOW READ',
    acls: [acl(), acl({ operation: DESCRIBE, permission: DENY })],
    request: { operation: DESCRIBE },
    expected: false,
  },
  ...[READ, WRITE, CREATE, ALTER_CONFIGS, DESCRIBE].map((operation) => ({
    name: `ALLOW ALL allows ${operationName(operation)}`,
    acls: [acl({ operation: ALL })],
    request: { operation },
    expected: true,
  })),
  {
    name: 'ALTER_CONFIGS implies DESCRIBE_CONFIGS',
    acls: [acl({ operation: ALTER_CONFIGS })],
    request: { operation: DESCRIBE_CONFIGS },
    expected: true,
  },
  {
    name: 'DESCRIBE_CONFIGS does not imply ALTER_CONFIGS',
    acls: [acl({ operation: DESCRIBE_CONFIGS })],
    request: { operation: ALTER_CONFIGS },
    expected: false,
  },
  {
    name: 'ALTER does not imply ALTER_CONFIGS',
    acls: [acl({ operation: ALTER })],
    request: { operation: ALTER_CONFIGS },
    expected: false,
  },
  {
    name: 'cluster resource',
    acls: [acl({ resourceType: CLUSTER, resourceName: 'kafka-cluster', operation: AclOperation.CLUSTER_ACTION })],
    request: { resourceType: CLUSTER, resourceName: 'kafka-cluster', operation: AclOperation.CLUSTER_ACTION },
    expected: true,
  },
]

for (const c of cases) {
  test(`authorize: ${c.name}`, () => {
    const a = authorizer(c.acls, { superUsers: c.superUsers, allowEveryone: c.allowEveryone })
    assert.equal(a.authorize(req(c.request)), c.expected)
    assert.equal(a.authorize(req(c.request)), c.expected, 'the cached decision is the same')
  })
}

test('a version bump drops cached decisions: adding an ACL flips a decision', () => {
  const acls: AclBinding[] = []
  let version = 0
  let reads = 0
  const a = new Authorizer({
    superUsers: [],
    allowEveryoneIfNoAclFound: false,
    acls: () => {
      reads++
      return acls
    },
    version: () => version,
  })
  assert.equal(a.authorize(req()), false)
  acls.push(acl())
  assert.equal(a.authorize(req()), false, 'still cached: the version did not change')
  assert.equal(reads, 1)
  version++
  assert.equal(a.authorize(req()), true)
  acls.push(acl({ permission: DENY }))
  version++
  assert.equal(a.authorize(req()), false)
  assert.equal(reads, 3)
})

test('the cache is bounded: it starts over when full', () => {
  let reads = 0
  const a = new Authorizer({
    superUsers: [],
    allowEveryoneIfNoAclFound: false,
    acls: () => {
      reads++
      return [acl()]
    },
    version: () => 7,
  })
  for (let i = 0; i < AUTHORIZER_CACHE_LIMIT; i++) a.authorize(req({ resourceName: `t${i}` }))
  assert.equal(reads, AUTHORIZER_CACHE_LIMIT)
  a.authorize(req({ resourceName: 't0' }))
  assert.equal(reads, AUTHORIZER_CACHE_LIMIT, 'a full cache still answers')
  a.authorize(req({ resourceName: 'one-more' }))
  a.authorize(req({ resourceName: 't0' }))
  assert.equal(reads, AUTHORIZER_CACHE_LIMIT + 2, 'the cache was cleared to make room')
})

test('the cache key keeps requests apart', () => {
  const a = authorizer([acl({ host: '10.0.0.1' })])
  assert.equal(a.authorize(req()), true)
  assert.equal(a.authorize(req({ host: '10.0.0.2' })), false)
  assert.equal(a.authorize(req({ principal: 'User:bob' })), false)
  assert.equal(a.authorize(req({ operation: WRITE })), false)
  assert.equal(a.authorize(req({ resourceType: GROUP })), false)
  assert.equal(a.authorize(req({ resourceName: 'orders2' })), false)
})

interface AnyCase {
  name: string
  acls: AclBinding[]
  expected: boolean
  allowEveryone?: boolean
  superUsers?: string[]
  operation?: number
}

const W = { operation: WRITE }
const anyCases: AnyCase[] = [
  {
    name: 'super user',
    acls: [acl({ ...W, resourceName: '*', permission: DENY })],
    superUsers: ['User:alice'],
    expected: true,
  },
  { name: 'no ACLs, allowEveryone false', acls: [], expected: false },
  { name: 'no ACLs, allowEveryone true', acls: [], allowEveryone: true, expected: true },
  { name: 'an ALLOW on one literal topic', acls: [acl(W)], expected: true },
  { name: 'an ALLOW on a prefix', acls: [acl({ ...W, patternType: PREFIXED })], expected: true },
  { name: 'an ALLOW for User:*', acls: [acl({ ...W, principal: 'User:*' })], expected: true },
  { name: 'an ALLOW ALL', acls: [acl({ operation: ALL })], expected: true },
  { name: 'an ALLOW implying the operation', acls: [acl()], operation: DESCRIBE, expected: true },
  { name: 'an ALLOW of another operation', acls: [acl()], expected: false },
  { name: 'an ALLOW for another principal', acls: [acl({ ...W, principal: 'User:bob' })], expected: false },
  { name: 'an ALLOW from another host', acls: [acl({ ...W, host: '10.0.0.9' })], expected: false },
  { name: 'an ALLOW on another resource type', acls: [acl({ ...W, resourceType: GROUP })], expected: false },
  {
    name: 'a DENY on the literal wildcard',
    acls: [acl(W), acl({ ...W, resourceName: '*', permission: DENY })],
    allowEveryone: true,
    expected: false,
  },
  {
    name: 'a DENY ALL on the wildcard for User:*',
    acls: [acl(W), acl({ resourceName: '*', principal: 'User:*', operation: ALL, permission: DENY })],
    expected: false,
  },
  {
    name: 'a DENY on the wildcard for another operation',
    acls: [acl(W), acl({ resourceName: '*', permission: DENY })],
    expected: true,
  },
  {
    name: 'the only ALLOW is denied by the same literal',
    acls: [acl(W), acl({ ...W, permission: DENY })],
    expected: false,
  },
  {
    name: 'the only ALLOW is covered by a DENY prefix',
    acls: [acl({ ...W, resourceName: 'orders-eu' }), acl({ ...W, patternType: PREFIXED, permission: DENY })],
    expected: false,
  },
  {
    name: 'an ALLOW prefix is not covered by a DENY literal',
    acls: [acl({ ...W, patternType: PREFIXED }), acl({ ...W, permission: DENY })],
    expected: true,
  },
  {
    name: 'one of two ALLOWs is not denied',
    acls: [acl(W), acl({ ...W, resourceName: 'payments' }), acl({ ...W, permission: DENY })],
    expected: true,
  },
  { name: 'an ALLOW on the wildcard', acls: [acl({ ...W, resourceName: '*' })], expected: true },
  {
    name: 'allowEveryone: some topic has no ACL',
    acls: [acl({ principal: 'User:bob' })],
    allowEveryone: true,
    expected: true,
  },
  {
    name: 'allowEveryone does not apply when a wildcard ACL covers every topic',
    acls: [acl({ resourceName: '*', principal: 'User:bob' })],
    allowEveryone: true,
    expected: false,
  },
]

for (const c of anyCases) {
  test(`authorizeAny: ${c.name}`, () => {
    const a = authorizer(c.acls, { superUsers: c.superUsers, allowEveryone: c.allowEveryone })
    assert.equal(a.authorizeAny('User:alice', '10.0.0.1', c.operation ?? WRITE, TOPIC), c.expected)
  })
}

test('parseSuperUsers splits on semicolons and trims', () => {
  assert.deepEqual(parseSuperUsers(' User:admin ; User:ops;;User:*  '), ['User:admin', 'User:ops', 'User:*'])
  assert.deepEqual(parseSuperUsers(''), [])
})

test('names and codes convert both ways', () => {
  assert.equal(operationName(READ), 'READ')
  assert.equal(operationName(99), 'UNKNOWN')
  assert.equal(operationByName('read'), READ)
  assert.equal(operationByName('READ'), READ)
  assert.equal(operationByName('DescribeConfigs'), DESCRIBE_CONFIGS)
  assert.equal(operationByName('describe-configs'), DESCRIBE_CONFIGS)
  assert.equal(operationByName('idempotent_write'), AclOperation.IDEMPOTENT_WRITE)
  assert.equal(operationByName('fly'), undefined)
  assert.equal(operationByName('constructor'), undefined)
  assert.equal(resourceTypeName(TRANSACTIONAL_ID), 'TRANSACTIONAL_ID')
  assert.equal(resourceTypeByName('TransactionalId'), TRANSACTIONAL_ID)
  assert.equal(resourceTypeByName('topic'), TOPIC)
  assert.equal(patternTypeByName('prefixed'), PREFIXED)
  assert.equal(permissionName(DENY), 'DENY')
  assert.equal(permissionByName('allow'), ALLOW)
  assert.equal(formatBinding(acl()), 'ALLOW User:alice from * READ on TOPIC LITERAL "orders"')
})

test('validateBinding accepts what CreateAcls stores', () => {
  for (const b of [
    acl(),
    acl({ patternType: PREFIXED, principal: 'User:*', permission: DENY, operation: ALL }),
    acl({ resourceName: '*' }),
    acl({ resourceType: CLUSTER, resourceName: 'kafka-cluster', operation: AclOperation.IDEMPOTENT_WRITE }),
    acl({ resourceType: TRANSACTIONAL_ID, resourceName: 'tx', host: '192.168.1.1' }),
  ])
    assert.equal(validateBinding(b), undefined, formatBinding(b))
})

test('validateBinding refuses each invalid field with a message', () => {
  const invalid: [Partial<AclBinding>, RegExp][] = [
    [{ resourceType: ResourceType.ANY }, /Invalid resourceType ANY/],
    [{ resourceType: ResourceType.UNKNOWN }, /Invalid resourceType UNKNOWN/],
    [{ resourceType: 42 }, /Invalid resourceType UNKNOWN/],
    [{ patternType: PatternType.MATCH }, /Invalid patternType MATCH/],
    [{ patternType: PatternType.ANY }, /Invalid patternType ANY/],
    [{ patternType: PatternType.UNKNOWN }, /Invalid patternType UNKNOWN/],
    [{ operation: AclOperation.ANY }, /Invalid operation ANY/],
    [{ operation: AclOperation.UNKNOWN }, /Invalid operation UNKNOWN/],
    [{ operation: 13 }, /Invalid operation UNKNOWN/],
    [{ permission: Permission.ANY }, /Invalid permissionType ANY/],
    [{ permission: Permission.UNKNOWN }, /Invalid permissionType UNKNOWN/],
    [{ resourceName: '' }, /Resource name should not be empty/],
    [
      { resourceType: CLUSTER, resourceName: 'my-cluster' },
      /only valid name for the CLUSTER resource is kafka-cluster/,
    ],
    [{ patternType: PREFIXED, resourceName: '*' }, /PREFIXED pattern cannot be '\*'/],
    [{ principal: 'alice' }, /Could not parse principal from `alice`/],
    [{ principal: 'User:' }, /Could not parse principal/],
    [{ principal: ':alice' }, /Could not parse principal/],
  ]
  for (const [over, message] of invalid) assert.match(validateBinding(acl(over)) ?? '', message, JSON.stringify(over))
})

function filter(over: Partial<AclFilter>): AclFilter {
  return { ...ANY_ACL_FILTER, ...over }
}

test('matchesFilter: ANY and null match anything; other fields compare exactly', () => {
  const b = acl({ host: '10.0.0.1' })
  assert.equal(matchesFilter(b, ANY_ACL_FILTER), true)
  assert.equal(matchesFilter(b, filter({ resourceType: TOPIC, resourceName: 'orders', patternType: LITERAL })), true)
  assert.equal(
    matchesFilter(b, filter({ principal: 'User:alice', host: '10.0.0.1', operation: READ, permission: ALLOW })),
    true,
  )
  assert.equal(matchesFilter(b, filter({ resourceType: GROUP })), false)
  assert.equal(matchesFilter(b, filter({ patternType: PREFIXED })), false)
  assert.equal(matchesFilter(b, filter({ resourceName: 'order' })), false)
  assert.equal(matchesFilter(b, filter({ principal: 'User:bob' })), false)
  assert.equal(matchesFilter(b, filter({ host: '*' })), false, 'a filter host is not a wildcard')
  assert.equal(matchesFilter(b, filter({ operation: WRITE })), false)
  assert.equal(matchesFilter(b, filter({ permission: DENY })), false)
  assert.equal(matchesFilter(acl({ principal: 'User:*' }), filter({ principal: 'User:alice' })), false)
  assert.equal(
    matchesFilter(acl({ patternType: PREFIXED }), filter({ resourceName: 'orders' })),
    true,
    'ANY: equal name',
  )
  assert.equal(matchesFilter(b, filter({ operation: AclOperation.UNKNOWN })), false)
})

test('matchesFilter: MATCH selects the bindings that apply to the name', () => {
  const f = filter({ resourceType: TOPIC, resourceName: 'orders-eu', patternType: PatternType.MATCH })
  const applies = [
    acl({ resourceName: 'orders-eu' }),
    acl({ resourceName: '*' }),
    acl({ resourceName: 'orders', patternType: PREFIXED }),
    acl({ resourceName: 'orders-eu', patternType: PREFIXED }),
  ]
  const doesNot = [
    acl({ resourceName: 'orders' }),
    acl({ resourceName: 'orders-eu-1', patternType: PREFIXED }),
    acl({ resourceName: 'orders-eu', resourceType: GROUP }),
  ]
  for (const b of applies) assert.equal(matchesFilter(b, f), true, formatBinding(b))
  for (const b of doesNot) assert.equal(matchesFilter(b, f), false, formatBinding(b))
  const everyPattern = filter({ patternType: PatternType.MATCH })
  assert.equal(matchesFilter(acl({ patternType: PREFIXED }), everyPattern), true, 'MATCH without a name')
})

test('validateFilter refuses UNKNOWN codes', () => {
  assert.equal(validateFilter(ANY_ACL_FILTER), undefined)
  assert.equal(validateFilter(filter({ patternType: PatternType.MATCH, resourceName: 'x' })), undefined)
  assert.match(validateFilter(filter({ resourceType: ResourceType.UNKNOWN })) ?? '', /resourceType/)
  assert.match(validateFilter(filter({ patternType: 9 })) ?? '', /patternType/)
  assert.match(validateFilter(filter({ operation: AclOperation.UNKNOWN })) ?? '', /operation/)
  assert.match(validateFilter(filter({ permission: Permission.UNKNOWN })) ?? '', /permissionType/)
})
