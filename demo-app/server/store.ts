import Database from 'better-sqlite3';
import type { Row } from './validate.js';

export type ChangeKind = 'inserted' | 'updated' | 'deleted' | 'changed';

/** One entry of the change log. `id` is absent for `changed` (a whole-table change). */
export interface ChangeEvent {
  eventId: number;
  table: string;
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
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl  TEXT NOT NULL,
    id   TEXT NOT NULL,
    body TEXT NOT NULL,
    UNIQUE (tbl, id)
  );
  CREATE INDEX IF NOT EXISTS rows_in_order ON rows (tbl, seq);
  CREATE TABLE IF NOT EXISTS events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    tbl    TEXT NOT NULL,
    kind   TEXT NOT NULL,
    row_id TEXT,
    at     INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_by_table ON events (tbl, id);
  -- The first version kept whole responses under a per-route scope; those
  -- cannot answer a lookup by key and fingerprint, so they go.
  DROP TABLE IF EXISTS idempotency;
  CREATE TABLE IF NOT EXISTS idempotency_keys (
    key         TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    client      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    tbl         TEXT NOT NULL,
    row_id      TEXT,
    body        TEXT,
    at          INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (at);
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_client ON idempotency_keys (client);
  CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
`;

interface EventRecord {
  id: number;
  tbl: string;
  kind: ChangeKind;
  row_id: string | null;
}

const toEvent = (r: EventRecord): ChangeEvent =>
  r.row_id === null
    ? { eventId: r.id, table: r.tbl, kind: r.kind }
    : { eventId: r.id, table: r.tbl, kind: r.kind, id: r.row_id };

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
    this.db.exec(SCHEMA);
    const db = this.db;
    this.stmt = {
      getRow: db.prepare<[string, string], { body: string }>('SELECT body FROM rows WHERE tbl = ? AND id = ?'),
      listRows: db.prepare<[string, number, number], { body: string }>(
        'SELECT body FROM rows WHERE tbl = ? ORDER BY seq LIMIT ? OFFSET ?',
      ),
      countRows: db.prepare<[string], { n: number }>('SELECT count(*) AS n FROM rows WHERE tbl = ?'),
      insertRow: db.prepare<[string, string, string]>('INSERT INTO rows (tbl, id, body) VALUES (?, ?, ?)'),
      updateRow: db.prepare<[string, string, string]>('UPDATE rows SET body = ? WHERE tbl = ? AND id = ?'),
      deleteRow: db.prepare<[string, string]>('DELETE FROM rows WHERE tbl = ? AND id = ?'),
      clearTable: db.prepare<[string]>('DELETE FROM rows WHERE tbl = ?'),
      appendEvent: db.prepare<[string, string, string | null, number]>(
        'INSERT INTO events (tbl, kind, row_id, at) VALUES (?, ?, ?, ?)',
      ),
      trimEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= ?'),
      eventsAfter: db.prepare<[string, number], EventRecord>(
        'SELECT id, tbl, kind, row_id FROM events WHERE tbl = ? AND id > ? ORDER BY id',
      ),
      latestEvent: db.prepare<[], { seq: number }>("SELECT seq FROM sqlite_sequence WHERE name = 'events'"),
      getMeta: db.prepare<[string], { value: number }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, number]>(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ),
      findKey: db.prepare<[string, number], KeyRecord>(
        `SELECT key, fingerprint, client, status, tbl AS "table", row_id AS rowId, body
           FROM idempotency_keys WHERE key = ? AND at > ?`,
      ),
      saveKey: db.prepare<[string, string, string, number, string, string | null, string | null, number]>(
        `INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, client, status, tbl, row_id, body, at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
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

  /** Runs `fn` in one SQLite transaction; a throw rolls everything back. */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  getRow(table: string, id: string): Row | undefined {
    const found = this.stmt.getRow.get(table, id);
    return found === undefined ? undefined : (JSON.parse(found.body) as Row);
  }

  /** Rows in insertion order. */
  listRows(table: string, offset: number, limit: number): Row[] {
    return this.stmt.listRows.all(table, limit, offset).map((r) => JSON.parse(r.body) as Row);
  }

  countRows(table: string): number {
    return this.stmt.countRows.get(table)?.n ?? 0;
  }

  insertRow(table: string, row: Row): void {
    this.stmt.insertRow.run(table, row.id, JSON.stringify(row));
  }

  /** Replaces the body in place, so the row keeps its position in lists. */
  updateRow(table: string, row: Row): void {
    this.stmt.updateRow.run(JSON.stringify(row), table, row.id);
  }

  deleteRow(table: string, id: string): boolean {
    return this.stmt.deleteRow.run(table, id).changes > 0;
  }

  clearTable(table: string): void {
    this.stmt.clearTable.run(table);
  }

  /** Appends to the change log and trims it to `eventRetention`; call inside the write's transaction. */
  appendEvent(table: string, kind: ChangeKind, id?: string): ChangeEvent {
    const eventId = Number(this.stmt.appendEvent.run(table, kind, id ?? null, Date.now()).lastInsertRowid);
    const cutoff = eventId - this.opts.eventRetention;
    if (cutoff > this.trimmedThrough()) {
      this.stmt.trimEvents.run(cutoff);
      this.stmt.setMeta.run('events_trimmed_through', cutoff);
    }
    return id === undefined ? { eventId, table, kind } : { eventId, table, kind, id };
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

  eventsAfter(table: string, eventId: number): ChangeEvent[] {
    return this.stmt.eventsAfter.all(table, eventId).map(toEvent);
  }

  /** The key's record, unless it is older than the retention window. */
  findKey(key: string, now: number): KeyRecord | undefined {
    return this.stmt.findKey.get(key, now - this.opts.idempotencyTtlMs);
  }

  /**
   * Remembers a key, drops expired ones and keeps the bounds (oldest first);
   * call inside the write's transaction.
   */
  saveKey(record: KeyRecord, now: number): void {
    this.stmt.purgeKeys.run(now - this.opts.idempotencyTtlMs);
    const r = record;
    this.stmt.saveKey.run(r.key, r.fingerprint, r.client, r.status, r.table, r.rowId, r.body, now);
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
