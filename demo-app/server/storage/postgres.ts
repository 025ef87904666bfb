import pg from 'pg';
import type { PoolClient } from 'pg';
import { assertSameRequest } from '../commit.js';
import { keyRecord, replayedResponse, rowToReread } from '../idempotency.js';
import type { Row } from '../validate.js';
import { readStored, storedBody, withVersion } from '../versions.js';
import type {
  Applied,
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

/** The channel every master LISTENs on; a notification's payload is the new event's id. */
export const EVENTS_CHANNEL = 'vantage_live_events';

// Bodies are text, not jsonb: rows come back exactly as stored (jsonb would
// reorder keys). `event_log` is one row: the newest committed event id and
// the trim mark (see appendEvent for why the id is taken from there).
const SCHEMA = `
  CREATE TABLE IF NOT EXISTS rows (
    seq   bigserial PRIMARY KEY,
    owner text NOT NULL,
    tbl   text NOT NULL,
    id    text NOT NULL,
    body  text NOT NULL,
    UNIQUE (owner, tbl, id)
  );
  -- A row's version: taken from a sequence, so a row deleted and made again
  -- never repeats one (versions.ts). Not the event id: that is taken last,
  -- under the log's lock (appendEvent).
  CREATE SEQUENCE IF NOT EXISTS row_versions;
  ALTER TABLE rows ADD COLUMN IF NOT EXISTS version bigint NOT NULL DEFAULT 0;
  CREATE INDEX IF NOT EXISTS rows_by_owner_in_order ON rows (owner, tbl, seq);
  CREATE TABLE IF NOT EXISTS events (
    id     bigint PRIMARY KEY,
    owner  text NOT NULL,
    tbl    text NOT NULL,
    kind   text NOT NULL,
    row_id text,
    at     bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS events_by_owner_table ON events (owner, tbl, id);
  CREATE TABLE IF NOT EXISTS event_log (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    head            bigint NOT NULL,
    trimmed_through bigint NOT NULL
  );
  INSERT INTO event_log (one, head, trimmed_through) VALUES (true, 0, 0) ON CONFLICT DO NOTHING;
  CREATE TABLE IF NOT EXISTS idempotency_keys (
    seq         bigserial UNIQUE,
    owner       text NOT NULL,
    key         text NOT NULL,
    fingerprint text NOT NULL,
    client      text NOT NULL,
    status      integer NOT NULL,
    tbl         text NOT NULL,
    row_id      text,
    body        text,
    at          bigint NOT NULL,
    PRIMARY KEY (owner, key)
  );
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (at);
  CREATE INDEX IF NOT EXISTS idempotency_keys_by_client ON idempotency_keys (client, seq);
  CREATE TABLE IF NOT EXISTS sessions (
    token_hash text PRIMARY KEY,
    user_name  text NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
  CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user_name, expires_at);
`;

// Advisory lock: masters starting together create the schema one at a time.
const SCHEMA_LOCK = 7_361_001;

// bigint columns as numbers: event ids and times stay far below 2^53.
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

// A concurrent transaction inserted the same row or key first, or two
// transactions deadlocked: running the write again sees the winner's result.
// This is how a request and its duplicate on another master apply once: the
// duplicate's key insert waits on the key's primary key until the first
// commits, fails, and the rerun finds the first's answer to replay.
const RETRYABLE = new Set(['23505', '40P01', '40001']);
const MAX_ATTEMPTS = 5;
// A follower reads the log in pages of this many events.
const FOLLOW_PAGE = 1000;

/** Whether a transaction's BEGIN was sent yet (`send`), and whether its function committed it itself. */
interface Transaction {
  begun: boolean;
  committed: boolean;
}

/**
 * Values as escaped SQL literals, for statements sent several in one round
 * trip: a query with parameters holds a single statement, a simple query
 * any number.
 */
class Literals {
  constructor(private readonly c: PoolClient) {}

  value(value: string | number | null | undefined): string {
    if (value === undefined || value === null) return 'NULL';
    if (typeof value === 'number') {
      if (!Number.isSafeInteger(value)) throw new Error(`not an integer for SQL: ${value}`);
      return String(value);
    }
    return this.c.escapeLiteral(value);
  }
}

/** The row a `SELECT body, version` found, if any. */
function storedRow(result: pg.QueryResult): Row | undefined {
  const found = result.rows[0] as { body: string; version: number } | undefined;
  return found === undefined ? undefined : readStored(found.body, found.version);
}

/** What `decide` said, with the version the store statement's RETURNING gave the row (inserted or updated). */
function withStoredVersion(applied: Applied, stored: pg.QueryResult): Applied {
  const { kind } = applied.change;
  if (kind !== 'inserted' && kind !== 'updated') return applied;
  return { ...applied, body: withVersion(applied.body as Row, (stored.rows[0] as { version: number }).version) };
}

/**
 * The master's data in PostgreSQL, shared by any number of masters. Writes,
 * their events and idempotency keys commit in one transaction. Each master
 * LISTENs on `EVENTS_CHANNEL`; a write NOTIFYs with its event id, delivered
 * to every master at commit, and each master then reads the log past the
 * last event it delivered, in id order. Event ids are handed out in commit
 * order (appendEvent), so "past the last delivered" never skips an event
 * that commits later with a smaller id, and none is delivered twice.
 */
export class PostgresStorage implements Storage {
  readonly kind = 'postgres';
  readonly sessions: SessionRows;
  private readonly listeners: EventListener[] = [];
  private listener: pg.Client | undefined;
  /** The newest event this master read from the log and handed to its listeners. */
  private delivered = 0;
  private reading = false;
  private readonly waiters = new Set<{ eventId: number; settle(): void }>();
  private readAgain = false;
  private closed = false;

  private constructor(
    private readonly url: string,
    private readonly pool: pg.Pool,
    private readonly opts: StorageOptions,
  ) {
    this.sessions = {
      insert: async (tokenHash, user, expiresAt, now, maxPerUser) => {
        await this.pool.query('DELETE FROM sessions WHERE expires_at <= $1', [now]);
        await this.pool.query('INSERT INTO sessions (token_hash, user_name, expires_at) VALUES ($1, $2, $3)', [tokenHash, user, expiresAt]);
        await this.pool.query(
          `DELETE FROM sessions WHERE token_hash IN
             (SELECT token_hash FROM sessions WHERE user_name = $1 ORDER BY expires_at DESC OFFSET $2)`,
          [user, maxPerUser],
        );
      },
      find: async (tokenHash, now) => {
        const { rows } = await this.pool.query<{ user: string; expiresAt: number }>(
          'SELECT user_name AS "user", expires_at AS "expiresAt" FROM sessions WHERE token_hash = $1 AND expires_at > $2',
          [tokenHash, now],
        );
        return rows[0];
      },
      remove: async (tokenHash) => void (await this.pool.query('DELETE FROM sessions WHERE token_hash = $1', [tokenHash])),
    };
  }

  /** Connects, creates the schema if needed, and starts following the log. */
  static async open(url: string, opts: StorageOptions): Promise<PostgresStorage> {
    // Without a timeout an unreachable host (dropped packets) would hang the start.
    const pool = new pg.Pool({ connectionString: url, types, connectionTimeoutMillis: 10_000 });
    // An idle connection that dies (server restart) must not crash the process; the next query reconnects.
    pool.on('error', () => {});
    const storage = new PostgresStorage(url, pool, opts);
    try {
      const client = await pool.connect();
      try {
        // Masters starting together would race on CREATE ... IF NOT EXISTS.
        await client.query('SELECT pg_advisory_lock($1)', [SCHEMA_LOCK]);
        await client.query(SCHEMA);
        await client.query('SELECT pg_advisory_unlock($1)', [SCHEMA_LOCK]);
      } finally {
        client.release();
      }
      await storage.listen();
    } catch (err) {
      await storage.close();
      throw err;
    }
    return storage;
  }

  async getRow(owner: Owner, table: string, id: string): Promise<Row | undefined> {
    return this.readRow(this.pool, owner, table, id);
  }

  async listRows(owner: Owner, table: string, offset: number, limit: number): Promise<{ rows: Row[]; total: number }> {
    const [count, page] = await Promise.all([
      this.pool.query<{ n: number }>('SELECT count(*) AS n FROM rows WHERE owner = $1 AND tbl = $2', [owner, table]),
      this.pool.query<{ body: string; version: number }>(
        'SELECT body, version FROM rows WHERE owner = $1 AND tbl = $2 ORDER BY seq LIMIT $3 OFFSET $4',
        [owner, table, limit, offset],
      ),
    ]);
    return { rows: page.rows.map((r) => readStored(r.body, r.version)), total: count.rows[0]?.n ?? 0 };
  }

  /**
   * A write in at most three round trips: the key and the row are read with
   * the BEGIN; without a key, the row, its event and the COMMIT go in one
   * more; with one, the row goes first (the key's answer holds its new
   * version), then the key, the event and the COMMIT. Each round trip is a
   * wait for the database and for this master's event loop, which during a
   * large fan-out is busy, so fewer of them is a shorter write.
   */
  async commit(owner: Owner, write: Write, keyed: KeyedWrite | undefined, now: number): Promise<Committed> {
    const { table } = write;
    const committed = await this.transaction(async (c, tx): Promise<Committed> => {
      const sql = new Literals(c);
      // FOR UPDATE: two masters patching one row apply one patch after the other, not both over the same original.
      const reads = [
        ...(keyed === undefined ? [] : [this.findKeySql(sql, owner, keyed.key, now)]),
        ...(write.id === undefined ? [] : [this.lockRowSql(sql, owner, table, write.id)]),
      ];
      const found = await this.send(c, tx, reads);
      if (keyed !== undefined) {
        const prior = found[0]!.rows[0] as KeyRecord | undefined;
        if (prior !== undefined) {
          assertSameRequest(prior, keyed);
          const reread = rowToReread(prior);
          const row = reread === undefined ? undefined : await this.readRow(c, owner, prior.table, reread);
          return { ...replayedResponse(prior, row), replayed: true };
        }
      }
      const existing = write.id === undefined ? undefined : storedRow(found.at(-1)!);
      const decided = write.decide(existing);
      if (keyed === undefined) {
        const { event, results } = await this.appendEvent(c, tx, owner, table, decided.change.kind, decided.change.id, [this.storeSql(sql, owner, table, decided)]);
        const applied = withStoredVersion(decided, results[0]!);
        return { status: applied.status, body: applied.body, replayed: false, event };
      }
      const [stored] = await this.send(c, tx, [this.storeSql(sql, owner, table, decided)]);
      const applied = withStoredVersion(decided, stored!);
      const { event } = await this.appendEvent(c, tx, owner, table, applied.change.kind, applied.change.id, this.saveKeySql(sql, keyRecord(keyed, owner, table, applied), now));
      return { status: applied.status, body: applied.body, replayed: false, event };
    });
    if (!committed.replayed) await this.handedOn(committed.event);
    return committed;
  }

  async replaceTable(owner: Owner, table: string, rows: Iterable<Row>): Promise<ChangeEvent> {
    const event = await this.transaction(async (c, tx) => {
      await this.send(c, tx, []);
      await c.query('DELETE FROM rows WHERE owner = $1 AND tbl = $2', [owner, table]);
      let ids: string[] = [];
      let bodies: string[] = [];
      const flush = async (): Promise<void> => {
        await c.query(
          "INSERT INTO rows (owner, tbl, id, body, version) SELECT $1, $2, i, b, nextval('row_versions') FROM unnest($3::text[], $4::text[]) AS u(i, b)",
          [owner, table, ids, bodies],
        );
        ids = [];
        bodies = [];
      };
      for (const row of rows) {
        ids.push(row.id);
        bodies.push(storedBody(row));
        if (ids.length === 5000) await flush();
      }
      if (ids.length > 0) await flush();
      return (await this.appendEvent(c, tx, owner, table, 'changed')).event;
    });
    await this.handedOn(event);
    return event;
  }

  /**
   * Resolves once this master's feeds were handed event `eventId`, so that a
   * write is answered only after this master's feeds know of it (as with
   * SQLite): a client that saw its write succeed and then opens a feed here
   * is told a head id that includes it. When every event before it was
   * delivered already, this master hands it on itself (ids have no gaps, so
   * nothing can come between); otherwise it reads the log at once rather
   * than waiting for the notification, and gives up waiting after a second
   * (the listening connection may be down), since the write itself is
   * committed.
   */
  private handedOn(event: ChangeEvent): Promise<void> {
    const { eventId } = event;
    if (this.delivered === eventId - 1 && !this.closed) {
      this.delivered = eventId;
      this.emit([event]);
      this.settleWaiters();
    }
    if (this.delivered >= eventId || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(), 1000);
      const settle = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
        resolve();
      };
      const waiter = { eventId, settle };
      this.waiters.add(waiter);
      this.readLog();
    });
  }

  async latestEventId(): Promise<number> {
    const { rows } = await this.pool.query<{ head: number }>('SELECT head FROM event_log');
    return rows[0]?.head ?? 0;
  }

  async trimmedThrough(): Promise<number> {
    const { rows } = await this.pool.query<{ trimmed: number }>('SELECT trimmed_through AS trimmed FROM event_log');
    return rows[0]?.trimmed ?? 0;
  }

  async eventsAfter(owner: Owner, table: string, eventId: number, limit: number): Promise<ChangeEvent[]> {
    const { rows } = await this.pool.query<EventRecord>(
      'SELECT id, tbl, owner, kind, row_id FROM events WHERE owner = $1 AND tbl = $2 AND id > $3 ORDER BY id LIMIT $4',
      [owner, table, eventId, limit],
    );
    return rows.map(toEvent);
  }

  follow(listener: EventListener): void {
    this.listeners.push(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const waiter of this.waiters) waiter.settle();
    await this.listener?.end().catch(() => {});
    await this.pool.end();
  }

  /**
   * Runs `fn` in a transaction, committed after it unless it committed itself
   * (`appendEvent`). The BEGIN waits for `fn`'s first statements (`send`), to
   * go to the database with them.
   */
  private async transaction<T>(fn: (c: PoolClient, tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.pool.connect();
      const tx: Transaction = { begun: false, committed: false };
      let broken: Error | undefined;
      try {
        const result = await fn(c, tx);
        if (tx.begun && !tx.committed) await c.query('COMMIT');
        return result;
      } catch (err) {
        if (tx.begun) await c.query('ROLLBACK').catch((rollbackFailed: Error) => (broken = rollbackFailed));
        const code = (err as { code?: string }).code;
        if (attempt < MAX_ATTEMPTS && code !== undefined && RETRYABLE.has(code)) continue;
        throw err;
      } finally {
        // A connection that cannot even roll back is dropped, not reused.
        c.release(broken);
      }
    }
  }

  private async readRow(q: pg.Pool | PoolClient, owner: Owner, table: string, id: string): Promise<Row | undefined> {
    return storedRow(await q.query('SELECT body, version FROM rows WHERE owner = $1 AND tbl = $2 AND id = $3', [owner, table, id]));
  }

  /**
   * Sends `statements` in one round trip, after the transaction's BEGIN if
   * it was not sent yet (then even with no statements), and returns their
   * results.
   */
  private async send(c: PoolClient, tx: Transaction, statements: string[]): Promise<pg.QueryResult[]> {
    const all = tx.begun ? statements : ['BEGIN', ...statements];
    if (all.length === 0) return [];
    // Before the answer: a failed statement leaves the transaction begun, to be rolled back.
    tx.begun = true;
    const results = (await c.query(all.join(';\n'))) as unknown as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(results) ? results : [results]).slice(all.length - statements.length);
  }

  /** Reads a row and locks it until the transaction ends. */
  private lockRowSql(sql: Literals, owner: Owner, table: string, id: string): string {
    return `SELECT body, version FROM rows WHERE owner = ${sql.value(owner)} AND tbl = ${sql.value(table)} AND id = ${sql.value(id)} FOR UPDATE`;
  }

  /** Stores what `decide` said; an inserted or updated row gets a new version (RETURNING version, see withStoredVersion). */
  private storeSql(sql: Literals, owner: Owner, table: string, applied: Applied): string {
    const { kind, id } = applied.change;
    const [o, t, i] = [sql.value(owner), sql.value(table), sql.value(id)];
    // An update replaces the body in place, so the row keeps its position in lists.
    if (kind === 'inserted')
      return `INSERT INTO rows (owner, tbl, id, body, version) VALUES (${o}, ${t}, ${i}, ${sql.value(storedBody(applied.body as Row))}, nextval('row_versions')) RETURNING version`;
    if (kind === 'updated')
      return `UPDATE rows SET body = ${sql.value(storedBody(applied.body as Row))}, version = nextval('row_versions') WHERE owner = ${o} AND tbl = ${t} AND id = ${i} RETURNING version`;
    if (kind === 'deleted') return `DELETE FROM rows WHERE owner = ${o} AND tbl = ${t} AND id = ${i}`;
    return `DELETE FROM rows WHERE owner = ${o} AND tbl = ${t}`;
  }

  /**
   * Appends to the log, NOTIFYs every master and commits. The id is not
   * taken from a sequence: sequence values are handed out at insert time, so
   * a write that took id 5 could commit after one that took id 6, and a
   * master that had read 6 would then skip 5 forever. Instead the id is
   * `head + 1` of the one `event_log` row, whose row lock this transaction
   * then holds until it commits: event ids commit in id order, without gaps,
   * and a reader that sees event N has every event before it. The price is
   * that writes commit one at a time from here on (the rest of each write
   * runs concurrently). So this is the transaction's last step, and the
   * statement that takes the lock and the COMMIT go in one round trip: the
   * lock is never held while the master's event loop is busy elsewhere (a
   * fan-out to thousands of feeds), only for the database's own work.
   * Values are inlined as escaped literals, since a query with parameters
   * holds a single statement.
   */
  private async appendEvent(
    c: PoolClient,
    tx: Transaction,
    owner: Owner,
    table: string,
    kind: ChangeKind,
    id?: string,
    before: string[] = [],
  ): Promise<{ event: ChangeEvent; results: pg.QueryResult[] }> {
    const sql = new Literals(c);
    const results = await this.send(c, tx, [
      ...before,
      `WITH next AS (UPDATE event_log SET head = head + 1 RETURNING head),
       added AS (
         INSERT INTO events (id, owner, tbl, kind, row_id, at)
         SELECT head, ${sql.value(owner)}, ${sql.value(table)}, ${sql.value(kind)}, ${sql.value(id)}, ${Math.floor(Date.now())} FROM next
         RETURNING id)
       SELECT id, pg_notify(${sql.value(EVENTS_CHANNEL)}, id::text)::text AS notified FROM added`,
      'COMMIT',
    ]);
    tx.committed = true;
    const eventId = (results.at(-2)!.rows[0] as { id: number }).id;
    await this.trim(eventId - this.opts.eventRetention);
    const event: ChangeEvent = id === undefined ? { eventId, table, owner, kind } : { eventId, table, owner, kind, id };
    return { event, results: results.slice(0, before.length) };
  }

  /**
   * Drops events up to `cutoff` and records the mark, in one statement of its
   * own (the row lock for a moment, no round trip under it). A trim that
   * fails only leaves older events for the next one.
   */
  private async trim(cutoff: number): Promise<void> {
    if (cutoff <= 0) return;
    await this.pool
      .query(
        `WITH mark AS (UPDATE event_log SET trimmed_through = $1 WHERE trimmed_through < $1 RETURNING 1)
         DELETE FROM events WHERE id <= $1 AND EXISTS (SELECT 1 FROM mark)`,
        [cutoff],
      )
      .catch((err: unknown) => console.error('vantage-live master: cannot trim the change log', err));
  }

  private findKeySql(sql: Literals, owner: Owner, key: string, now: number): string {
    return `SELECT owner, key, fingerprint, client, status, tbl AS "table", row_id AS "rowId", body
              FROM idempotency_keys WHERE owner = ${sql.value(owner)} AND key = ${sql.value(key)} AND at > ${sql.value(now - this.opts.idempotencyTtlMs)}`;
  }

  /** Remembers a key, drops expired ones and keeps the bounds (oldest first). */
  private saveKeySql(sql: Literals, r: KeyRecord, now: number): string[] {
    return [
      `DELETE FROM idempotency_keys WHERE at <= ${sql.value(now - this.opts.idempotencyTtlMs)}`,
      // No ON CONFLICT: an expired record of this key was purged just above, so
      // a conflict is a duplicate request that committed first (see RETRYABLE).
      `INSERT INTO idempotency_keys (owner, key, fingerprint, client, status, tbl, row_id, body, at)
       VALUES (${[r.owner, r.key, r.fingerprint, r.client, r.status, r.table, r.rowId, r.body, now].map((v) => sql.value(v)).join(', ')})`,
      `DELETE FROM idempotency_keys WHERE seq IN
         (SELECT seq FROM idempotency_keys WHERE client = ${sql.value(r.client)} ORDER BY seq DESC OFFSET ${sql.value(this.opts.idempotencyMaxKeysPerClient)})`,
      `DELETE FROM idempotency_keys WHERE seq IN
         (SELECT seq FROM idempotency_keys ORDER BY seq DESC OFFSET ${sql.value(this.opts.idempotencyMaxKeys)})`,
    ];
  }

  /**
   * LISTENs for new events, then starts from the head: an event committed
   * after LISTEN took effect is both notified and past the head, so none
   * falls between the two.
   */
  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, types, connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    client.on('notification', (message) => {
      // Many notifications arrive for events one read already fetched.
      if (Number(message.payload) > this.delivered) this.readLog();
    });
    client.on('end', () => {
      if (!this.closed) this.relisten();
    });
    await client.connect();
    await client.query(`LISTEN ${EVENTS_CHANNEL}`);
    this.listener = client;
    if (this.delivered === 0) this.delivered = await this.latestEventId();
    // After a reconnect: whatever committed while the connection was down.
    this.readLog();
  }

  // The database went away (restart, failover): keep trying; feeds resume where they were.
  private relisten(): void {
    const retry = (): void => {
      if (this.closed) return;
      this.listen().catch(() => setTimeout(retry, 1000).unref());
    };
    setTimeout(retry, 200).unref();
  }

  /** Reads the log past `delivered` and hands each event on, one read at a time. */
  private readLog(): void {
    if (this.reading) {
      this.readAgain = true;
      return;
    }
    this.reading = true;
    void (async () => {
      try {
        do {
          this.readAgain = false;
          const { rows } = await this.pool.query<EventRecord>(
            'SELECT id, tbl, owner, kind, row_id FROM events WHERE id > $1 ORDER BY id LIMIT $2',
            [this.delivered, FOLLOW_PAGE],
          );
          if (this.closed) return;
          // A write of this master may have handed on some of them meanwhile (handedOn).
          const fresh = rows.filter((record) => record.id > this.delivered);
          if (fresh.length > 0) {
            this.delivered = fresh.at(-1)!.id;
            this.emit(fresh.map(toEvent));
          }
          this.settleWaiters();
          if (rows.length === FOLLOW_PAGE) this.readAgain = true;
        } while (this.readAgain && !this.closed);
      } catch (err) {
        if (!this.closed) {
          console.error('vantage-live master: cannot read the change log', err);
          setTimeout(() => this.readLog(), 1000).unref();
        }
      } finally {
        this.reading = false;
      }
    })();
  }

  private settleWaiters(): void {
    for (const waiter of this.waiters) if (waiter.eventId <= this.delivered) waiter.settle();
  }

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
