// Authentication and authorization of the fastify routes (an onRequest hook, before the body is
// read), and the routes of users and tokens:
//   GET    /_admin/whoami          the caller's principal
//   GET    /_admin/users           every user (cluster admins)
//   GET    /_admin/users/{user}    one user (that user, or a cluster admin)
//   PUT    /_admin/users/{user}    create or change a user (cluster admins); a user may change
//                                  their own password and nothing else
//   DELETE /_admin/users/{user}    (cluster admins) and the user's tokens with it
//   POST   /_admin/tokens          a new API token, shown once (for oneself; for another user,
//                                  cluster admins)
//   GET    /_admin/tokens          one's tokens (cluster admins: everyone's), never their secrets
//   DELETE /_admin/tokens/{id}     revoke (one's own, or any for cluster admins)
// The last cluster admin cannot be deleted or demoted: nobody could administer the cluster then.
import { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { type AccessControl, ANONYMOUS } from '../access/access-control.ts'
import {
  checkPassword,
  checkRoles,
  checkUserName,
  hashPassword,
  newToken,
  type Principal,
  type TokenRecord,
  type UserRecord,
} from '../access/users.ts'
import { DbError } from '../errors.ts'
import { type MetadataLog } from '../metadata/metadata-log.ts'
import { routeNeed } from './route-access.ts'

declare module 'fastify' {
  interface FastifyRequest {
    /** Who made the request (ANONYMOUS when authentication is off). */
    principal: Principal
  }
}

/** Authenticates and authorizes every fastify route by route-access.ts's table. */
export function requireAccess(app: FastifyInstance, access: AccessControl): void {
  // fastify takes only null or primitives as a decorator's initial value (one shape per request).
  app.decorateRequest('principal', null as unknown as Principal)
  app.addHook('onRequest', async (req) => {
    const need = routeNeed(req.method, req.routeOptions.url, req.params)
    if (need === null) {
      req.principal = ANONYMOUS
      return
    }
    req.principal = await access.authenticate(req.headers.authorization)
    access.authorize(req.principal, need)
  })
}

const userBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    password: { type: 'string' },
    admin: { type: 'boolean' },
    roles: { type: 'object', additionalProperties: { type: 'string', enum: ['read', 'write', 'admin'] } },
  },
}

const describeUser = (u: Pick<UserRecord, 'name' | 'admin' | 'roles'>) => ({
  name: u.name,
  admin: u.admin,
  roles: u.roles,
})
const describeToken = (t: TokenRecord) => ({
  id: t.id,
  user: t.user,
  description: t.description,
  createdAt: new Date(t.createdAt).toISOString(),
})

export function accessRoutes(app: FastifyInstance, metadata: MetadataLog, access: AccessControl): void {
  const users = metadata.view.users
  const tokens = metadata.view.tokens
  let chain: Promise<unknown> = Promise.resolve()
  const exclusive = <T>(change: () => Promise<T>): Promise<T> => {
    const run = chain.then(change)
    chain = run.catch(() => undefined)
    return run
  }
  const admins = () => [...users.values()].filter((u) => u.admin).map((u) => u.name)
  const checkNotLastAdmin = (name: string) => {
    const left = admins().filter((a) => a !== name)
    if (users.get(name)?.admin === true && left.length === 0)
      throw new DbError('INVALID_USER', `${name} is the last cluster admin: make another user admin first`)
  }
  const userNamed = (name: string): UserRecord => {
    const u = users.get(name)
    if (u === undefined) throw new DbError('UNKNOWN_USER', `no user ${name}`)
    return u
  }

  app.get('/_admin/whoami', { schema: { summary: "The caller's principal" } }, (req, reply) =>
    reply.send({
      ...describeUser(req.principal),
      ...(req.principal.via ? { via: req.principal.via } : {}),
      authentication: access.open ? 'off' : 'required',
    }),
  )

  app.get('/_admin/users', { schema: { summary: 'List users (cluster admins)' } }, (_req, reply) =>
    reply.send({ users: [...users.values()].sort((a, b) => a.name.localeCompare(b.name)).map(describeUser) }),
  )

  app.get('/_admin/users/:user', { schema: { summary: 'One user (the user, or a cluster admin)' } }, (req, reply) => {
    const name = (req.params as { user: string }).user
    if (!req.principal.admin && req.principal.name !== name)
      throw new DbError('FORBIDDEN', `${req.principal.name} may not see user ${name}`)
    return reply.send(describeUser(userNamed(name)))
  })

  app.put(
    '/_admin/users/:user',
    { schema: { summary: 'Create or change a user', body: userBody } },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const name = (req.params as { user: string }).user
      const body = req.body as { password?: unknown; admin?: boolean; roles?: unknown }
      checkUserName(name)
      if (!req.principal.admin) {
        if (req.principal.name !== name || body.admin !== undefined || body.roles !== undefined)
          throw new DbError('FORBIDDEN', `${req.principal.name} may change only their own password`)
      }
      const created = await exclusive(async () => {
        const existing = users.get(name)
        if (existing === undefined && body.password === undefined)
          throw new DbError('INVALID_USER', `a new user needs a password`)
        const password =
          body.password === undefined ? existing!.password : await hashPassword(checkPassword(body.password))
        const next: UserRecord = {
          name,
          password,
          admin: body.admin ?? existing?.admin ?? false,
          roles: body.roles === undefined ? (existing?.roles ?? {}) : checkRoles(body.roles),
        }
        if (existing?.admin === true && !next.admin) checkNotLastAdmin(name)
        await metadata.put(`user/${name}`, next)
        return existing === undefined
      })
      return reply.code(created ? 201 : 200).send(describeUser(userNamed(name)))
    },
  )

  app.delete('/_admin/users/:user', { schema: { summary: 'Delete a user and their tokens' } }, async (req, reply) => {
    const name = (req.params as { user: string }).user
    await exclusive(async () => {
      userNamed(name)
      checkNotLastAdmin(name)
      for (const t of [...tokens.values()]) if (t.user === name) await metadata.put(`token/${t.id}`, null)
      await metadata.put(`user/${name}`, null)
    })
    return reply.code(204).send()
  })

  app.post(
    '/_admin/tokens',
    {
      schema: {
        summary: 'Create an API token (shown once)',
        body: {
          type: 'object',
          additionalProperties: false,
          properties: { user: { type: 'string' }, description: { type: 'string', maxLength: 200 } },
        },
      },
    },
    async (req: FastifyRequest, reply: FastifyReply) => {
      const body = (req.body ?? {}) as { user?: string; description?: string }
      const user = body.user ?? req.principal.name
      if (user !== req.principal.name && !req.principal.admin)
        throw new DbError('FORBIDDEN', `${req.principal.name} may create tokens only for themselves`)
      userNamed(user)
      const { token, record } = newToken(user, body.description ?? '', Date.now())
      await metadata.put(`token/${record.id}`, record)
      return reply.code(201).send({ ...describeToken(record), token })
    },
  )

  app.get('/_admin/tokens', { schema: { summary: "List one's tokens (cluster admins: all)" } }, (req, reply) =>
    reply.send({
      tokens: [...tokens.values()]
        .filter((t) => req.principal.admin || t.user === req.principal.name)
        .sort((a, b) => a.createdAt - b.createdAt)
        .map(describeToken),
    }),
  )

  app.delete('/_admin/tokens/:id', { schema: { summary: 'Revoke a token' } }, async (req, reply) => {
    const id = (req.params as { id: string }).id
    const t = tokens.get(id)
    // Someone else's token is as unknown as a missing one: its existence is not told.
    if (t === undefined || (!req.principal.admin && t.user !== req.principal.name))
      throw new DbError('UNKNOWN_TOKEN', `no token ${id}`)
    await metadata.put(`token/${id}`, null)
    return reply.code(204).send()
  })
}
