import Database from 'better-sqlite3';
import { assertSameRequest } from '../commit.js';
import { HttpError } from '../errors.js';
import { keyRecord, replayedResponse, rowToReread } from '../idempotency.js';
import type { Row } from '../validate.js';
import { readStored, storedBody, withVersion } from '../versions.js';
import type {
  Applied,
  BatchItem,
  ChangeEvent,
  ChangeKind,
  Committed,
  EventListener,
  KeyedWrite,
  KeyRecord,
  Owner,
  SessionRows,
  Storage,
  StorageOptions,
  Write,
} from './types.js';
import { toEvent, type EventRecord } from './types.js';

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS rows (
    seq   INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL DEFAULT '',
    tbl   TEXT NOT NULL,
    id    TEXT NOT NULL,
    body  TEXT NOT NULL,
    -- The id of the event that last wrote the row: unique and growing, so a
    -- row deleted and made again never repeats a version (versions.ts).
    version INTEGER NOT NULL DEFAULT 0,
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
  CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
  CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user, expires_at);
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

/** Files written before rows had versions: their rows start at version 0, and any write moves them on. */
function addVersions(db: Database.Database): void {
  if (!(db.pragma('table_info(rows)') as { name: string }[]).some((c) => c.name === 'version')) {
    db.exec('ALTER TABLE rows ADD COLUMN version INTEGER NOT NULL DEFAULT 0');
  }
}

/**
 * The master's SQLite file: rows of every logical table in one SQL table (so
 * a logical table exists as soon as a row names it), the change log, the
 * idempotency keys and the sessions. One process owns the file, so the change
 * feed is told of each event right after its transaction, synchronously and
 * in commit order. The driver is synchronous; the async methods only wrap its
 * answers, so a request costs what it did before the interface was async.
 */
export class SqliteStorage implements Storage {
  readonly kind = 'sqlite';
  readonly sessions: SessionRows;
  private readonly db: Database.Database;
  private readonly stmt;
  private readonly listeners: EventListener[] = [];

  constructor(
    path: string,
    private readonly opts: StorageOptions,
  ) {
    this.db = new Database(path);
    this.db.pragma('journal_mode = WAL');
    // FULL rather than NORMAL: with NORMAL a WAL commit survives a process
    // crash but may roll back on power loss, and the master answers 2xx only
    // for writes that must never be lost. One fsync per write is cheap here.
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    addOwners(this.db);
    addVersions(this.db);
    const db = this.db;
    this.stmt = {
      getRow: db.prepare<[Owner, string, string], { body: string; version: number }>(
        'SELECT body, version FROM rows WHERE owner = ? AND tbl = ? AND id = ?',
      ),
      listRows: db.prepare<[Owner, string, number, number], { body: string; version: number }>(
        'SELECT body, version FROM rows WHERE owner = ? AND tbl = ? ORDER BY seq LIMIT ? OFFSET ?',
      ),
      countRows: db.prepare<[Owner, string], { n: number }>('SELECT count(*) AS n FROM rows WHERE owner = ? AND tbl = ?'),
      insertRow: db.prepare<[Owner, string, string, string, number]>('INSERT INTO rows (owner, tbl, id, body, version) VALUES (?, ?, ?, ?, ?)'),
      updateRow: db.prepare<[string, number, Owner, string, string]>('UPDATE rows SET body = ?, version = ? WHERE owner = ? AND tbl = ? AND id = ?'),
      deleteRow: db.prepare<[Owner, string, string]>('DELETE FROM rows WHERE owner = ? AND tbl = ? AND id = ?'),
      clearTable: db.prepare<[Owner, string]>('DELETE FROM rows WHERE owner = ? AND tbl = ?'),
      appendEvent: db.prepare<[Owner, string, string, string | null, number]>(
        'INSERT INTO events (owner, tbl, kind, row_id, at) VALUES (?, ?, ?, ?, ?)',
      ),
      trimEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= ?'),
      eventsAfter: db.prepare<[Owner, string, number, number], EventRecord>(
        'SELECT id, tbl, owner, kind, row_id FROM events WHERE owner = ? AND tbl = ? AND id > ? ORDER BY id LIMIT ?',
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
      insertSession: db.prepare<[string, string, number]>('INSERT INTO sessions (token_hash, user, expires_at) VALUES (?, ?, ?)'),
      findSession: db.prepare<[string, number], { user: string; expiresAt: number }>(
        'SELECT user, expires_at AS expiresAt FROM sessions WHERE token_hash = ? AND expires_at > ?',
      ),
      removeSession: db.prepare<[string]>('DELETE FROM sessions WHERE token_hash = ?'),
      purgeSessions: db.prepare<[number]>('DELETE FROM sessions WHERE expires_at <= ?'),
      trimUserSessions: db.prepare<[string, number]>(
        `DELETE FROM sessions WHERE token_hash IN
           (SELECT token_hash FROM sessions WHERE user = ? ORDER BY expires_at DESC LIMIT -1 OFFSET ?)`,
      ),
    };
    const { stmt } = this;
    this.sessions = {
      insert: async (tokenHash, user, expiresAt, now, maxPerUser) => {
        stmt.purgeSessions.run(now);
        stmt.insertSession.run(tokenHash, user, expiresAt);
        stmt.trimUserSessions.run(user, maxPerUser);
      },
      find: async (tokenHash, now) => stmt.findSession.get(tokenHash, now),
      remove: async (tokenHash) => void stmt.removeSession.run(tokenHash),
    };
  }

  async getRow(owner: Owner, table: string, id: string): Promise<Row | undefined> {
    return this.readRow(owner, table, id);
  }

  async listRows(owner: Owner, table: string, offset: number, limit: number): Promise<{ rows: Row[]; total: number }> {
    const total = this.stmt.countRows.get(owner, table)?.n ?? 0;
    const rows = this.stmt.listRows.all(owner, table, limit, offset).map((r) => readStored(r.body, r.version));
    return { rows, total };
  }

  async commit(owner: Owner, write: Write, keyed: KeyedWrite | undefined, now: number): Promise<Committed> {
    const committed = this.db.transaction(() => this.commitOne(owner, write, keyed, now))();
    if (!committed.replayed) this.emit([committed.event]);
    return committed;
  }

  // One transaction for the batch; each write in a savepoint of its own (a
  // nested better-sqlite3 transaction), so a refusal undoes only that write.
  async commitBatch(owner: Owner, writes: BatchItem[], now: number): Promise<Array<Committed | HttpError>> {
    const one = this.db.transaction((item: BatchItem) => this.commitOne(owner, item.write, item.keyed, now));
    const results = this.db.transaction(() =>
      writes.map((item) => {
        try {
          return one(item);
        } catch (err) {
          if (err instanceof HttpError) return err;
          throw err;
        }
      }),
    )();
    const events = results.flatMap((r) => (r instanceof HttpError || r.replayed ? [] : [r.event]));
    if (events.length > 0) this.emit(events);
    return results;
  }

  // Inside a transaction: commit.ts's steps for one write.
  private commitOne(owner: Owner, write: Write, keyed: KeyedWrite | undefined, now: number): Committed {
    const { table } = write;
    if (keyed !== undefined) {
      // Looked up under the writer's owner: one user's key never answers another's request.
      const prior = this.stmt.findKey.get(owner, keyed.key, now - this.opts.idempotencyTtlMs);
      if (prior !== undefined) {
        assertSameRequest(prior, keyed);
        const reread = rowToReread(prior);
        return { ...replayedResponse(prior, reread === undefined ? undefined : this.readRow(owner, prior.table, reread)), replayed: true };
      }
    }
    const decided = write.decide(write.id === undefined ? undefined : this.readRow(owner, table, write.id));
    // The event first: its id is the row's new version.
    const event = this.appendEvent(owner, table, decided.change.kind, decided.change.id);
    const applied = this.store(owner, table, decided, event.eventId);
    if (keyed !== undefined) this.saveKey(keyRecord(keyed, owner, table, applied), now);
    return { status: applied.status, body: applied.body, replayed: false, event };
  }

  async replaceTable(owner: Owner, table: string, rows: Iterable<Row>): Promise<ChangeEvent> {
    const event = this.db.transaction(() => {
      this.stmt.clearTable.run(owner, table);
      const changed = this.appendEvent(owner, table, 'changed');
      for (const row of rows) this.stmt.insertRow.run(owner, table, row.id, storedBody(row), changed.eventId);
      return changed;
    })();
    this.emit([event]);
    return event;
  }

  async latestEventId(): Promise<number> {
    return this.stmt.latestEvent.get()?.seq ?? 0;
  }

  async trimmedThrough(): Promise<number> {
    return this.trimmedThroughNow();
  }

  async eventsAfter(owner: Owner, table: string, eventId: number, limit: number): Promise<ChangeEvent[]> {
    return this.stmt.eventsAfter.all(owner, table, eventId, limit).map(toEvent);
  }

  follow(listener: EventListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  private readRow(owner: Owner, table: string, id: string): Row | undefined {
    const found = this.stmt.getRow.get(owner, table, id);
    return found === undefined ? undefined : readStored(found.body, found.version);
  }

  /** Stores what `decide` said at `version`; the answer to send, with the row's version. */
  private store(owner: Owner, table: string, applied: Applied, version: number): Applied {
    const { kind, id } = applied.change;
    // An update replaces the body in place, so the row keeps its position in lists.
    if (kind === 'inserted') this.stmt.insertRow.run(owner, table, id as string, storedBody(applied.body as Row), version);
    else if (kind === 'updated') this.stmt.updateRow.run(storedBody(applied.body as Row), version, owner, table, id as string);
    else if (kind === 'deleted') this.stmt.deleteRow.run(owner, table, id as string);
    else this.stmt.clearTable.run(owner, table);
    return applied.body === null ? applied : { ...applied, body: withVersion(applied.body, version) };
  }

  private appendEvent(owner: Owner, table: string, kind: ChangeKind, id?: string): ChangeEvent {
    const eventId = Number(this.stmt.appendEvent.run(owner, table, kind, id ?? null, Date.now()).lastInsertRowid);
    const cutoff = eventId - this.opts.eventRetention;
    if (cutoff > this.trimmedThroughNow()) {
      this.stmt.trimEvents.run(cutoff);
      this.stmt.setMeta.run('events_trimmed_through', cutoff);
    }
    return id === undefined ? { eventId, table, owner, kind } : { eventId, table, owner, kind, id };
  }

  /**
   * Recorded explicitly rather than inferred from the oldest retained id,
   * because ids of other tables' events interleave and a fresh log has
   * trimmed nothing.
   */
  private trimmedThroughNow(): number {
    return this.stmt.getMeta.get('events_trimmed_through')?.value ?? 0;
  }

  /** Remembers a key, drops expired ones and keeps the bounds (oldest first). */
  private saveKey(r: KeyRecord, now: number): void {
    this.stmt.purgeKeys.run(now - this.opts.idempotencyTtlMs);
    this.stmt.saveKey.run(r.owner, r.key, r.fingerprint, r.client, r.status, r.table, r.rowId, r.body, now);
    this.stmt.trimClientKeys.run(r.client, this.opts.idempotencyMaxKeysPerClient);
    this.stmt.trimKeys.run(this.opts.idempotencyMaxKeys);
  }

  // After the commit: a listener's failure must not turn a stored write into an error answer.
  private emit(events: ChangeEvent[]): void {
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (err) {
        console.error('vantage-live master: change feed listener failed', err);
      }
    }
  }
}
