// One partition replica's SQLite database (node:sqlite): documents, their local secondary index
// entries, and the replication checkpoint, which commits in the same SQLite transaction as the
// data it covers (invariant 4, docs/invariants.md), so a restart resumes exactly after the last
// applied transaction.
//
// Everything applied here comes from the replication stream, on masters and slaves alike
// (invariant 2, docs/invariants.md): operations carry their index entries, computed by the
// master, so applying is deterministic and replicas never depend on their own view of the table
// definitions.
import { createHash } from 'node:crypto'
import { readFileSync, rmSync } from 'node:fs'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import { type Operation } from '../replication/operation.ts'

export interface Checkpoint {
  generation: number
  scn: number
  /** The log offset to resume reading from. */
  nextOffset: number
}

export interface StoredDocument {
  table: string
  key: string[]
  doc: Record<string, unknown>
  schemaVersion: number
  etag: string
}

/** The ETag of every document a transaction writes: its (generation, scn). */
export const etagOf = (generation: number, scn: number): string => `${generation}.${scn}`

// The sub-key (the key after the partition key) is stored so that SQLite's binary order is the
// key order, part by part in code point order (JSON text is not: '["item 2"]' < '["item"]'):
// each part's characters, U+0000..U+0002 escaped as U+0002 then the character plus 2, followed by
// U+0001, which sorts below every character.
function subKey(key: string[]): string {
  let out = ''
  for (let p = 1; p < key.length; p++) {
    const part = key[p]
    for (let i = 0; i < part.length; i++) {
      const c = part.charCodeAt(i)
      out += c <= 2 ? `\u0002${String.fromCharCode(c + 2)}` : part[i]
    }
    out += '\u0001'
  }
  return out
}

function parseSubKey(skey: string): string[] {
  const parts: string[] = []
  let part = ''
  for (let i = 0; i < skey.length; i++) {
    const c = skey.charCodeAt(i)
    if (c === 1) {
      parts.push(part)
      part = ''
    } else if (c === 2) part += String.fromCharCode(skey.charCodeAt(++i) - 2)
    else part += skey[i]
  }
  return parts
}

/** WAL pages (4 KiB each) after which a commit checkpoints the WAL into the database file. */
export const WAL_CHECKPOINT_PAGES = 4000

export class ReplicaStore {
  readonly path: string
  readonly #db: DatabaseSync
  readonly #put: StatementSync
  readonly #delete: StatementSync
  readonly #deleteIndex: StatementSync
  readonly #insertIndex: StatementSync
  readonly #saveCheckpoint: StatementSync
  readonly #get: StatementSync
  readonly #group: StatementSync
  readonly #query: StatementSync
  readonly #begin: StatementSync
  readonly #commit: StatementSync
  readonly #rollback: StatementSync
  /**
   * Whether the idx table may hold entries. While it holds none (a database whose tables have no
   * indexes), applying a document skips the statement that deletes its old entries.
   */
  #mayHaveIndexEntries: boolean

  constructor(path: string) {
    this.path = path
    this.#db = new DatabaseSync(path)
    // WAL with synchronous=NORMAL: a commit may be lost to a machine crash, but then its
    // checkpoint is lost with it and the replica replays those transactions from the log.
    // Exclusive locking, set before WAL: only this process opens the file, so SQLite keeps its
    // locks and the WAL index in its own memory instead of taking file locks and reading shared
    // memory on every statement (a point read ~9 -> ~4 µs, a commit ~32 -> ~20 µs here); a second
    // process opening the same replica gets SQLITE_BUSY.
    // A checkpoint (WAL pages copied into the file, two fsyncs) runs inside the commit that crosses
    // wal_autocheckpoint pages and blocks the node's event loop for it: 5-25 ms under load here.
    // At WAL_CHECKPOINT_PAGES instead of SQLite's 1,000 they come a quarter as often and copy each
    // hot page once for more commits: under the 32-worker write load, the time nodes spent in
    // commits over 1 ms fell from ~0.8 s to ~0.35 s in 6 s (docs/database.md, "Performance").
    this.#db.exec(`
      PRAGMA locking_mode = EXCLUSIVE;
      PRAGMA journal_mode = WAL;
      PRAGMA synchronous = NORMAL;
      PRAGMA wal_autocheckpoint = ${WAL_CHECKPOINT_PAGES};
      -- A rowid table, with the key in its primary-key index: documents of ~1 KB are too large for
      -- WITHOUT ROWID's in-tree rows (upserts measured about 3x slower that way).
      CREATE TABLE IF NOT EXISTS docs (tbl TEXT NOT NULL, pkey TEXT NOT NULL, skey TEXT NOT NULL, doc TEXT NOT NULL,
        version INTEGER NOT NULL, etag TEXT NOT NULL, PRIMARY KEY (tbl, pkey, skey));
      CREATE TABLE IF NOT EXISTS idx (tbl TEXT NOT NULL, field TEXT NOT NULL, pkey TEXT NOT NULL, value TEXT NOT NULL,
        skey TEXT NOT NULL, PRIMARY KEY (tbl, field, pkey, value, skey)) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS idx_by_doc ON idx (tbl, pkey, skey);
      CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL,
        scn INTEGER NOT NULL, next_offset INTEGER NOT NULL);
      INSERT OR IGNORE INTO checkpoint VALUES (1, 0, 0, 0);
    `)
    this.#put = this.#db.prepare(
      'INSERT INTO docs VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tbl, pkey, skey) DO UPDATE SET doc = excluded.doc, version = excluded.version, etag = excluded.etag',
    )
    this.#delete = this.#db.prepare('DELETE FROM docs WHERE tbl = ? AND pkey = ? AND skey = ?')
    this.#deleteIndex = this.#db.prepare('DELETE FROM idx WHERE tbl = ? AND pkey = ? AND skey = ?')
    this.#insertIndex = this.#db.prepare('INSERT OR IGNORE INTO idx VALUES (?, ?, ?, ?, ?)')
    this.#saveCheckpoint = this.#db.prepare(
      'UPDATE checkpoint SET generation = ?, scn = ?, next_offset = ? WHERE id = 1',
    )
    this.#get = this.#db.prepare('SELECT doc, version, etag FROM docs WHERE tbl = ? AND pkey = ? AND skey = ?')
    this.#group = this.#db.prepare(
      'SELECT skey, doc, version, etag FROM docs WHERE tbl = ? AND pkey = ? ORDER BY skey LIMIT ?',
    )
    // Prepared once: exec() would compile them again on every commit.
    this.#begin = this.#db.prepare('BEGIN')
    this.#commit = this.#db.prepare('COMMIT')
    this.#rollback = this.#db.prepare('ROLLBACK')
    this.#mayHaveIndexEntries = this.#db.prepare('SELECT 1 FROM idx LIMIT 1').get() !== undefined
    this.#query = this.#db.prepare(
      'SELECT d.skey AS skey, d.doc AS doc, d.version AS version, d.etag AS etag FROM idx i JOIN docs d ON d.tbl = i.tbl AND d.pkey = i.pkey AND d.skey = i.skey WHERE i.tbl = ? AND i.field = ? AND i.pkey = ? AND i.value = ? ORDER BY d.skey LIMIT ?',
    )
  }

  checkpoint(): Checkpoint {
    const row = this.#db.prepare('SELECT generation, scn, next_offset FROM checkpoint WHERE id = 1').get() as {
      generation: number
      scn: number
      next_offset: number
    }
    return { generation: row.generation, scn: row.scn, nextOffset: row.next_offset }
  }

  /** Applies a whole transaction and its checkpoint atomically. */
  apply(ops: readonly Operation[], checkpoint: Checkpoint): void {
    this.applyBatch([{ ops, checkpoint }])
  }

  /**
   * Applies transactions in log order, with the checkpoint of the last, in one SQLite transaction
   * (fewer commits when a fetch brings many); all of them or, on any error, none.
   */
  applyBatch(transactions: readonly { ops: readonly Operation[]; checkpoint: Checkpoint }[]): void {
    if (transactions.length === 0) return
    this.#begin.run()
    try {
      for (const { ops, checkpoint } of transactions) {
        const etag = etagOf(checkpoint.generation, checkpoint.scn)
        for (const op of ops) {
          const pkey = op.key[0]
          const skey = subKey(op.key)
          if (this.#mayHaveIndexEntries) this.#deleteIndex.run(op.table, pkey, skey)
          if (op.kind === 'delete') {
            this.#delete.run(op.table, pkey, skey)
            continue
          }
          this.#put.run(op.table, pkey, skey, JSON.stringify(op.doc), op.schemaVersion, etag)
          for (const [field, value] of op.index) {
            this.#mayHaveIndexEntries = true
            this.#insertIndex.run(op.table, field, pkey, value, skey)
          }
        }
      }
      const last = transactions[transactions.length - 1].checkpoint
      this.#saveCheckpoint.run(last.generation, last.scn, last.nextOffset)
      this.#commit.run()
    } catch (error) {
      this.#rollback.run()
      throw error
    }
  }

  get(table: string, key: string[]): StoredDocument | undefined {
    const row = this.getText(table, key)
    if (row === undefined) return undefined
    return {
      table,
      key,
      doc: JSON.parse(row.doc) as Record<string, unknown>,
      schemaVersion: row.schemaVersion,
      etag: row.etag,
    }
  }

  /** A document as stored: its JSON text, unparsed (reads pass it through when it needs no upgrade). */
  getText(table: string, key: string[]): { doc: string; schemaVersion: number; etag: string } | undefined {
    const row = this.#get.get(table, key[0], subKey(key)) as { doc: string; version: number; etag: string } | undefined
    return row === undefined ? undefined : { doc: row.doc, schemaVersion: row.version, etag: row.etag }
  }

  /** The documents of a table sharing a partition key (a document group), in key order. */
  group(table: string, partitionKey: string, limit: number): StoredDocument[] {
    return (
      this.#group.all(table, partitionKey, limit) as { skey: string; doc: string; version: number; etag: string }[]
    ).map((r) => this.#row(table, partitionKey, r))
  }

  /** Documents of a document group whose indexed `field` equals `value`. */
  query(table: string, partitionKey: string, field: string, value: string, limit: number): StoredDocument[] {
    return (
      this.#query.all(table, field, partitionKey, value, limit) as {
        skey: string
        doc: string
        version: number
        etag: string
      }[]
    ).map((r) => this.#row(table, partitionKey, r))
  }

  #row(table: string, pkey: string, r: { skey: string; doc: string; version: number; etag: string }): StoredDocument {
    return {
      table,
      key: [pkey, ...parseSubKey(r.skey)],
      doc: JSON.parse(r.doc) as Record<string, unknown>,
      schemaVersion: r.version,
      etag: r.etag,
    }
  }

  /** SHA-256 of the replica's content (documents, index entries, last applied (generation, scn)), for comparing replicas. */
  digest(): string {
    const hash = createHash('sha256')
    for (const r of this.#db
      .prepare('SELECT tbl, pkey, skey, doc, version, etag FROM docs ORDER BY tbl, pkey, skey')
      .iterate())
      hash.update(JSON.stringify(r)).update('\n')
    hash.update('--idx\n')
    for (const r of this.#db.prepare('SELECT * FROM idx ORDER BY tbl, field, pkey, value, skey').iterate())
      hash.update(JSON.stringify(r)).update('\n')
    const c = this.checkpoint()
    hash.update(`--checkpoint ${c.generation} ${c.scn}\n`)
    return hash.digest('hex')
  }

  count(): number {
    return (this.#db.prepare('SELECT count(*) AS n FROM docs').get() as { n: number }).n
  }

  /**
   * SHA-256 of the replica's SQLite file in canonical form (a VACUUM INTO copy, which rebuilds it
   * page by page in key order), so replicas can be compared byte for byte. The header's schema
   * cookie (bytes 40-43) is left out: it counts schema changes in the file's own history, which
   * differs for a replica bootstrapped from a snapshot.
   */
  fileDigest(): string {
    const copy = `${this.path}.digest-${process.pid}`
    try {
      this.snapshotTo(copy)
      const bytes = readFileSync(copy)
      bytes.fill(0, 40, 44)
      return createHash('sha256').update(bytes).digest('hex')
    } finally {
      rmSync(copy, { force: true })
    }
  }

  /** Writes a consistent copy of the replica to `target` (for bootstrapping another replica). */
  snapshotTo(target: string): void {
    rmSync(target, { force: true })
    this.#db.prepare('VACUUM INTO ?').run(target)
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close()
  }
}
