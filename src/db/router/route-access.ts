// What each route of the API needs of the caller, in one table: nothing (health, metrics, the
// OpenAPI document), any authenticated principal, a role on the database it names, or cluster
// admin. Routes that let users act on their own things (their password, their tokens) need only
// authentication here, and check ownership in their handlers (routes-access.ts).
import { type Need } from '../access/access-control.ts'

const AUTHENTICATED: Need = { kind: 'authenticated' }
const CLUSTER: Need = { kind: 'cluster' }

/** null: public. Routes not listed need authentication (so an unknown path answers 401, then 404). */
export function routeNeed(method: string, route: string | undefined, params: unknown): Need | null {
  const db = (params as { db?: string } | undefined)?.db ?? ''
  const read: Need = { kind: 'database', db, role: 'read' }
  const write: Need = { kind: 'database', db, role: 'write' }
  switch (route) {
    case '/_health':
    case '/metrics':
    case '/openapi.json':
      return null
    case '/:db/:table/*':
      return method === 'GET' || method === 'HEAD' ? read : write
    case '/:db/_multiget':
    case '/:db/_changes':
      return read
    case '/:db/_transaction':
      return write
    case '/_admin/databases/:db':
      return method === 'GET' ? read : CLUSTER
    case '/_admin/databases/:db/tables/:table/schemas':
      return { kind: 'database', db, role: 'admin' }
    case '/_admin/users':
      return CLUSTER
    case '/_admin/users/:user':
      return method === 'DELETE' ? CLUSTER : AUTHENTICATED
    case '/_admin/databases':
    case '/_admin/placement':
    case '/_admin/cluster':
    case '/_admin/whoami':
    case '/_admin/tokens':
    case '/_admin/tokens/:id':
      return AUTHENTICATED
    case '/_admin/rebalance':
      return method === 'GET' ? AUTHENTICATED : CLUSTER
    case '/_admin/databases/:db/partitions/:partition/master':
    case '/_admin/nodes/:node/decommission':
      return CLUSTER
    default:
      return AUTHENTICATED
  }
}
