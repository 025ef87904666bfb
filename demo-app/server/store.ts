import Database from 'better-sqlite3';
import type { Row } from './validate.js';

export type ChangeKind = 'inserted' | 'updated' | 'deleted' | 'changed';

/**
 * Whose rows: a user's name in auth mode, `OPEN` without it. Every row, event
 * and idempotency key belongs to one owner, and each owner has its own id
 * space: two users may both have `products/a`, and neither learns of the
 * other's.
 */
export type Owner = string;

/** The owner of everything a master without `--auth` stores. No user name is empty, so it never meets a user's. */
export const OPEN: Owner = '';

/** One entry of the change log. `id` is absent for `changed` (a whole-table change). */
export interface ChangeEvent {
  eventId: number;
  table: string;
  owner: Owner;
  kind: ChangeKind;
  id?: string;
}

/** A response as sent: `body` is null for bodiless responses. */
export interface StoredResponse {
  status: number;
  body: unknown;
}

/**
 * What is kept for an Idempotency-Key (see idempotency.ts): enough to
 * recognise the request again and to answer a replay, not a copy of the row.
 */
export interface KeyRecord {
  /** Keys are per owner: the same key from two users names two requests. */
  owner: Owner;
  key: string;
  fingerprint: string;
  /** The client address that sent it; bounds are per client. */
  client: string;
  status: number;
  table: string;
  /** The row the write answered with; null for bodiless answers. */
  rowId: string | null;
  /** The answer's JSON when small; otherwise null and a replay re-reads `rowId`. */
  body: string | null;
}

export interface StoreOptions {
  eventRetention: number;
  idempotencyTtlMs: number;
  /** Keys kept in total and per client address; past them the oldest go first. */
  idempotencyMaxKeys: number;
  idempotencyMaxKeysPerClient: number;
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS rows (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL DEFAULT '',
    tbl   TEXT NOT NULL,
    id    TEXT NOT NULL,
    body  TEXT NOT NULL,
    UNIQUE (owner, tbl, id)
  );
  CREATE INDEX IF NOT EXISTS rows_by_owner_in_order ON rows (owner, tbl, seq);
  CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl    TEXT NOT NULL,
    kind   TEXT NOT NULL,
    row_id TEXT,
    at     INTEGER NOT NULL,
    owner  TEXT NOT NULL DEFAULT ''
  );
  DROP INDEX IF EXISTS events_by_table;
  CREATE INDEX IF NOT EXISTS events_by_owner_table ON events (owner, tbl, id);
  -- The first version kept whole responses under a per-route scope; those
  -- cannot answer a lookup by key and fingerprint, so they go.
  DROP TABLE IF EXISTS idempotency;
  CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner       TEXT NOT NULL DEFAULT '',
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    client      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    tbl         TEXT NOT NULL,
    row_id      TEXT,
    body        TEXT,
    at          INTEGER NOT NULL,
    PRIMARY KEY (owner, key)
  );
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (at);
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_client ON idempotency_keys (client);
  CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
`;

/**
 * Files written before rows had owners: their rows, events and keys become
 * the open owner's, so a master without --auth serves them as before. Rows
 * and keys are rebuilt (a UNIQUE or PRIMARY KEY cannot be altered); events
 * only gain a column, so their ids, and every client's resume point, stay.
 */
function addOwners(db: Database.Database): void {
  const hasTable = (name: string): boolean =>
    db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?").get(name) !== undefined;
  const lacksOwner = (table: string): boolean =>
    hasTable(table) && !(db.pragma(`table_info(${table})`) as { name: string }[]).some((c) => c.name === 'owner');
  db.transaction(() => {
    const rows = lacksOwner('rows');
    const keys = lacksOwner('idempotency_keys');
    if (rows) db.exec('ALTER TABLE rows RENAME TO rows_before_owners; DROP INDEX IF EXISTS rows_in_order;');
    if (keys) db.exec('ALTER TABLE idempotency_keys RENAME TO keys_before_owners; DROP INDEX IF EXISTS idempotency_keys_by_age; DROP INDEX IF EXISTS idempotency_keys_by_client;');
    if (lacksOwner('events')) db.exec("ALTER TABLE events ADD COLUMN owner TEXT NOT NULL DEFAULT ''");
    db.exec(SCHEMA);
    if (rows) {
      db.exec(`INSERT INTO rows (seq, owner, tbl, id, body) SELECT seq, '', tbl, id, body FROM rows_before_owners;
               DROP TABLE rows_before_owners;`);
    }
    if (keys) {
      db.exec(`INSERT INTO idempotency_keys (owner, key, fingerprint, client, status, tbl, row_id, body, at)
                 SELECT '', key, fingerprint, client, status, tbl, row_id, body, at FROM keys_before_owners;
               DROP TABLE keys_before_owners;`);
    }
  })();
}

interface EventRecord {
  id: number;
  tbl: string;
  owner: Owner;
  kind: ChangeKind;
  row_id: string | null;
}

const toEvent = (r: EventRecord): ChangeEvent =>
  r.row_id === null
    ? { eventId: r.id, table: r.tbl, owner: r.owner, kind: r.kind }
    : { eventId: r.id, table: r.tbl, owner: r.owner, kind: r.kind, id: r.row_id };

/**
 * One owner's rows and change log: what a request of that owner may read and
 * write. Write methods belong inside the write's transaction (`Store.transaction`).
 */
export interface OwnedRows {
  readonly owner: Owner;
  getRow(table: string, id: string): Row | undefined;
  /** Rows in insertion order. */
  listRows(table: string, offset: number, limit: number): Row[];
  countRows(table: string): number;
  insertRow(table: string, row: Row): void;
  /** Replaces the body in place, so the row keeps its position in lists. */
  updateRow(table: string, row: Row): void;
  deleteRow(table: string, id: string): boolean;
  clearTable(table: string): void;
  /** Appends to the change log (trimmed to `eventRetention`). */
  appendEvent(table: string, kind: ChangeKind, id?: string): ChangeEvent;
}

/**
 * The master's SQLite file: rows of every logical table in one SQL table (so a
 * logical table exists as soon as a row names it), the change log, and the
 * idempotency keys. Every method is synchronous; writes that belong together
 * go through `transaction`.
 */
export class Store {
  private readonly db: Database.Database;
  private readonly opts: StoreOptions;
  private readonly stmt;

  constructor(path: string, opts: StoreOptions) {
    this.opts = opts;
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL rather than NORMAL: with NORMAL a WAL commit survives a process
    // crash but may roll back on power loss, and the master answers 2xx only
    // for writes that must never be lost. One fsync per write is cheap here.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    addOwners(this.db);
    const db = this.db;
    this.stmt = {
      getRow: db.prepare<[Owner, string, string], { body: string }>('SELECT body FROM rows WHERE owner = ? AND tbl = ? AND id = ?'),
      listRows: db.prepare<[Owner, string, number, number], { body: string }>(
        'SELECT body FROM rows WHERE owner = ? AND tbl = ? ORDER BY seq LIMIT ? OFFSET ?',
      ),
      countRows: db.prepare<[Owner, string], { n: number }>('SELECT count(*) AS n FROM rows WHERE owner = ? AND tbl = ?'),
      insertRow: db.prepare<[Owner, string, string, string]>('INSERT INTO rows (owner, tbl, id, body) VALUES (?, ?, ?, ?)'),
      updateRow: db.prepare<[string, Owner, string, string]>('UPDATE rows SET body = ? WHERE owner = ? AND tbl = ? AND id = ?'),
      deleteRow: db.prepare<[Owner, string, string]>('DELETE FROM rows WHERE owner = ? AND tbl = ? AND id = ?'),
      clearTable: db.prepare<[Owner, string]>('DELETE FROM rows WHERE owner = ? AND tbl = ?'),
      appendEvent: db.prepare<[Owner, string, string, string | null, number]>(
        'INSERT INTO events (owner, tbl, kind, row_id, at) VALUES (?, ?, ?, ?, ?)',
      ),
      trimEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= ?'),
      eventsAfter: db.prepare<[Owner, string, number], EventRecord>(
        'SELECT id, tbl, owner, kind, row_id FROM events WHERE owner = ? AND tbl = ? AND id > ? ORDER BY id',
      ),
      latestEvent: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
      getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, number]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      findKey: db.prepare<[Owner, string, number], KeyRecord>(
        `SELECT owner, key, fingerprint, client, status, tbl AS "table", row_id AS rowId, body
           FROM idempotency_keys WHERE owner = ? AND key = ? AND at > ?`,
      ),
      saveKey: db.prepare<[Owner, string, string, string, number, string, string | null, string | null, number]>(
        `INSERT OR REPLACE INTO idempotency_keys (owner, key, fingerprint, client, status, tbl, row_id, body, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      purgeKeys: db.prepare<[number]>('DELETE FROM idempotency_keys WHERE at <= ?'),
      // Rowids grow with every insert, so "all but the newest N" is a rowid
      // range: the bounds cost an index step, not a count of the table.
      trimKeys: db.prepare<[number]>(
        'DELETE FROM idempotency_keys WHERE rowid <= (SELECT max(rowid) FROM idempotency_keys) - ?',
      ),
      trimClientKeys: db.prepare<[string, number]>(
        `DELETE FROM idempotency_keys WHERE rowid IN
           (SELECT rowid FROM idempotency_keys WHERE client = ? ORDER BY rowid DESC LIMIT -1 OFFSET ?)`,
      ),
      countKeys: db.prepare<[], { n: number; bytes: number }>(
        'SELECT count(*) AS n, coalesce(sum(length(CAST(body AS BLOB))), 0) AS bytes FROM idempotency_keys',
      ),
    };
  }

  /** The open file, for stores that keep their own tables in it (auth/sessions.ts). */
  get database(): Database.Database {
    return this.db;
  }

  /** Runs `fn` in one SQLite transaction; a throw rolls everything back. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** The rows and change log of one owner (`OPEN` without --auth). */
  rowsOf(owner: Owner): OwnedRows {
    const { stmt } = this;
    return {
      owner,
      getRow: (table, id) => {
        const found = stmt.getRow.get(owner, table, id);
        return found === undefined ? undefined : (JSON.parse(found.body) as Row);
      },
      listRows: (table, offset, limit) => stmt.listRows.all(owner, table, limit, offset).map((r) => JSON.parse(r.body) as Row),
      countRows: (table) => stmt.countRows.get(owner, table)?.n ?? 0,
      insertRow: (table, row) => void stmt.insertRow.run(owner, table, row.id, JSON.stringify(row)),
      updateRow: (table, row) => void stmt.updateRow.run(JSON.stringify(row), owner, table, row.id),
      deleteRow: (table, id) => stmt.deleteRow.run(owner, table, id).changes > 0,
      clearTable: (table) => void stmt.clearTable.run(owner, table),
      appendEvent: (table, kind, id) => this.appendEvent(owner, table, kind, id),
    };
  }

  private appendEvent(owner: Owner, table: string, kind: ChangeKind, id?: string): ChangeEvent {
    const eventId = Number(this.stmt.appendEvent.run(owner, table, kind, id ?? null, Date.now()).lastInsertRowid);
    const cutoff = eventId - this.opts.eventRetention;
    if (cutoff > this.trimmedThrough()) {
      this.stmt.trimEvents.run(cutoff);
      this.stmt.setMeta.run('events_trimmed_through', cutoff);
    }
    return id === undefined ? { eventId, table, owner, kind } : { eventId, table, owner, kind, id };
  }

  /** The newest event id ever written (0 for a fresh file); survives trimming. */
  latestEventId(): number {
    return this.stmt.latestEvent.get()?.seq ?? 0;
  }

  /**
   * Every event with an id up to this one has been trimmed away. Recorded
   * explicitly rather than inferred from the oldest retained id, because ids of
   * other tables' events interleave and a fresh log has trimmed nothing.
   */
  trimmedThrough(): number {
    return this.stmt.getMeta.get('events_trimmed_through')?.value ?? 0;
  }

  /** One owner's events of one table after `eventId`; other tables' and owners' events leave gaps in the ids. */
  eventsAfter(table: string, owner: Owner, eventId: number): ChangeEvent[] {
    return this.stmt.eventsAfter.all(owner, table, eventId).map(toEvent);
  }

  /** The owner's record of the key, unless it is older than the retention window. */
  findKey(owner: Owner, key: string, now: number): KeyRecord | undefined {
    return this.stmt.findKey.get(owner, key, now - this.opts.idempotencyTtlMs);
  }

  /**
   * Remembers a key, drops expired ones and keeps the bounds (oldest first);
   * call inside the write's transaction.
   */
  saveKey(record: KeyRecord, now: number): void {
    this.stmt.purgeKeys.run(now - this.opts.idempotencyTtlMs);
    const r = record;
    this.stmt.saveKey.run(r.owner, r.key, r.fingerprint, r.client, r.status, r.table, r.rowId, r.body, now);
    this.stmt.trimClientKeys.run(r.client, this.opts.idempotencyMaxKeysPerClient);
    this.stmt.trimKeys.run(this.opts.idempotencyMaxKeys);
  }

  /** How many keys are kept and the bytes of the answers kept with them. */
  keyStats(): { keys: number; bodyBytes: number } {
    const { n, bytes } = this.stmt.countKeys.get() ?? { n: 0, bytes: 0 };
    return { keys: n, bodyBytes: bytes };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
