// A storage node's Prometheus metrics (served on its internal API's GET /metrics).
import { Counter, Gauge, type Registry } from 'prom-client'
import { type ReplicaAction } from '../replication/replica-state.ts'

export interface NodeMetrics {
  onAction(db: string, partition: number, action: ReplicaAction): void
  /** CPU a replica that is not master spent applying records it read (a process.cpuUsage() delta). */
  onReplicaApply(cpu: NodeJS.CpuUsage): void
}

interface ReplicaSource {
  replicas: Map<
    string,
    {
      db: string
      partition: number
      role: string
      readOffset: number
      applied: { generation: number; scn: number }
      pendingCount: number
    }
  >
}

export function createNodeMetrics(registry: Registry, node: ReplicaSource): NodeMetrics {
  const actions = new Counter({
    name: 'cortado_replication_records_total',
    help: 'Replication stream outcomes per partition: applied, generation-start, duplicate, zombie, discarded, invalid, integrity-gap',
    labelNames: ['db', 'partition', 'outcome'],
    registers: [registry],
  })
  new Gauge({
    name: 'cortado_replica_read_offset',
    help: 'Next offset each replica reads from its partition log',
    labelNames: ['db', 'partition', 'role'],
    registers: [registry],
    collect() {
      this.reset()
      for (const r of node.replicas.values())
        this.set({ db: r.db, partition: String(r.partition), role: r.role }, r.readOffset)
    },
  })
  new Gauge({
    name: 'cortado_replica_applied_generation',
    help: 'Generation of the last transaction each replica applied',
    labelNames: ['db', 'partition'],
    registers: [registry],
    collect() {
      this.reset()
      for (const r of node.replicas.values())
        this.set({ db: r.db, partition: String(r.partition) }, r.applied.generation)
    },
  })
  new Gauge({
    name: 'cortado_master_pending_transactions',
    help: 'Transactions a master has written and not yet read back',
    labelNames: ['db', 'partition'],
    registers: [registry],
    collect() {
      this.reset()
      for (const r of node.replicas.values())
        if (r.role === 'master') this.set({ db: r.db, partition: String(r.partition) }, r.pendingCount)
    },
  })
  const replicaApplyCpu = new Counter({
    name: 'cortado_node_replica_apply_cpu_seconds_total',
    help: 'CPU (user + system) spent applying replication records on replicas that were not master, apart from the work of masters (estimated from one apply in 8)',
    registers: [registry],
  })
  return {
    onAction(db, partition, action) {
      actions.inc({ db, partition: String(partition), outcome: action.kind })
    },
    onReplicaApply(cpu) {
      replicaApplyCpu.inc((cpu.user + cpu.system) / 1e6)
    },
  }
}
