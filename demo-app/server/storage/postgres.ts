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

/** Whether a transaction's function committed it itself. */
interface Transaction {
  committed: boolean;
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
    return this.readRow(this.pool, owner, table, id, false);
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

  async commit(owner: Owner, write: Write, keyed: KeyedWrite | undefined, now: number): Promise<Committed> {
    const { table } = write;
    const committed = await this.transaction(async (c, tx): Promise<Committed> => {
      if (keyed !== undefined) {
        const prior = await this.findKey(c, owner, keyed.key, now);
        if (prior !== undefined) {
          assertSameRequest(prior, keyed);
          const reread = rowToReread(prior);
          const row = reread === undefined ? undefined : await this.readRow(c, owner, prior.table, reread, false);
          return { ...replayedResponse(prior, row), replayed: true };
        }
      }
      // FOR UPDATE: two masters patching one row apply one patch after the other, not both over the same original.
      const decided = write.decide(write.id === undefined ? undefined : await this.readRow(c, owner, table, write.id, true));
      const applied = await this.store(c, owner, table, decided);
      if (keyed !== undefined) await this.saveKey(c, keyRecord(keyed, owner, table, applied), now);
      // Last, so the event log's lock is held only for the event and the commit.
      const event = await this.appendEvent(c, tx, owner, table, applied.change.kind, applied.change.id);
      return { status: applied.status, body: applied.body, replayed: false, event };
    });
    if (!committed.replayed) await this.handedOn(committed.event);
    return committed;
  }

  async replaceTable(owner: Owner, table: string, rows: Iterable<Row>): Promise<ChangeEvent> {
    const event = await this.transaction(async (c, tx) => {
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
      return this.appendEvent(c, tx, owner, table, 'changed');
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

  /** Runs `fn` in a transaction, committed after it unless it committed itself (`appendEvent`). */
  private async transaction<T>(fn: (c: PoolClient, tx: Transaction) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const c = await this.pool.connect();
      const tx: Transaction = { committed: false };
      let broken: Error | undefined;
      try {
        await c.query('BEGIN');
        const result = await fn(c, tx);
        if (!tx.committed) await c.query('COMMIT');
        return result;
      } catch (err) {
        await c.query('ROLLBACK').catch((rollbackFailed: Error) => (broken = rollbackFailed));
        const code = (err as { code?: string }).code;
        if (attempt < MAX_ATTEMPTS && code !== undefined && RETRYABLE.has(code)) continue;
        throw err;
      } finally {
        // A connection that cannot even roll back is dropped, not reused.
        c.release(broken);
      }
    }
  }

  private async readRow(q: pg.Pool | PoolClient, owner: Owner, table: string, id: string, forUpdate: boolean): Promise<Row | undefined> {
    const { rows } = await q.query<{ body: string; version: number }>(
      `SELECT body, version FROM rows WHERE owner = $1 AND tbl = $2 AND id = $3${forUpdate ? ' FOR UPDATE' : ''}`,
      [owner, table, id],
    );
    return rows[0] === undefined ? undefined : readStored(rows[0].body, rows[0].version);
  }

  /** Stores what `decide` said under a new version; the answer to send, with that version. */
  private async store(c: PoolClient, owner: Owner, table: string, applied: Applied): Promise<Applied> {
    const { kind, id } = applied.change;
    // An update replaces the body in place, so the row keeps its position in lists.
    if (kind === 'inserted' || kind === 'updated') {
      const sql =
        kind === 'inserted'
          ? "INSERT INTO rows (owner, tbl, id, body, version) VALUES ($1, $2, $3, $4, nextval('row_versions')) RETURNING version"
          : "UPDATE rows SET body = $4, version = nextval('row_versions') WHERE owner = $1 AND tbl = $2 AND id = $3 RETURNING version";
      const { rows } = await c.query<{ version: number }>(sql, [owner, table, id, storedBody(applied.body as Row)]);
      return { ...applied, body: withVersion(applied.body as Row, (rows[0] as { version: number }).version) };
    }
    if (kind === 'deleted') await c.query('DELETE FROM rows WHERE owner = $1 AND tbl = $2 AND id = $3', [owner, table, id]);
    else await c.query('DELETE FROM rows WHERE owner = $1 AND tbl = $2', [owner, table]);
    return applied;
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
  private async appendEvent(c: PoolClient, tx: Transaction, owner: Owner, table: string, kind: ChangeKind, id?: string): Promise<ChangeEvent> {
    const literal = (value: string | undefined): string => (value === undefined ? 'NULL' : c.escapeLiteral(value));
    const results = (await c.query(
      `WITH next AS (UPDATE event_log SET head = head + 1 RETURNING head),
       added AS (
         INSERT INTO events (id, owner, tbl, kind, row_id, at)
         SELECT head, ${literal(owner)}, ${literal(table)}, ${literal(kind)}, ${literal(id)}, ${Math.floor(Date.now())} FROM next
         RETURNING id)
       SELECT id, pg_notify(${literal(EVENTS_CHANNEL)}, id::text)::text AS notified FROM added;
       COMMIT`,
    )) as unknown as pg.QueryResult<{ id: number }>[];
    tx.committed = true;
    const eventId = results[0]!.rows[0]!.id;
    await this.trim(eventId - this.opts.eventRetention);
    return id === undefined ? { eventId, table, owner, kind } : { eventId, table, owner, kind, id };
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

  private async findKey(c: PoolClient, owner: Owner, key: string, now: number): Promise<KeyRecord | undefined> {
    const { rows } = await c.query<KeyRecord>(
      `SELECT owner, key, fingerprint, client, status, tbl AS "table", row_id AS "rowId", body
         FROM idempotency_keys WHERE owner = $1 AND key = $2 AND at > $3`,
      [owner, key, now - this.opts.idempotencyTtlMs],
    );
    return rows[0];
  }

  /** Remembers a key, drops expired ones and keeps the bounds (oldest first). */
  private async saveKey(c: PoolClient, r: KeyRecord, now: number): Promise<void> {
    await c.query('DELETE FROM idempotency_keys WHERE at <= $1', [now - this.opts.idempotencyTtlMs]);
    // No ON CONFLICT: an expired record of this key was purged just above, so
    // a conflict is a duplicate request that committed first (see RETRYABLE).
    await c.query(
      `INSERT INTO idempotency_keys (owner, key, fingerprint, client, status, tbl, row_id, body, at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [r.owner, r.key, r.fingerprint, r.client, r.status, r.table, r.rowId, r.body, now],
    );
    await c.query(
      `DELETE FROM idempotency_keys WHERE seq IN
         (SELECT seq FROM idempotency_keys WHERE client = $1 ORDER BY seq DESC OFFSET $2)`,
      [r.client, this.opts.idempotencyMaxKeysPerClient],
    );
    await c.query(
      `DELETE FROM idempotency_keys WHERE seq IN
         (SELECT seq FROM idempotency_keys ORDER BY seq DESC OFFSET $1)`,
      [this.opts.idempotencyMaxKeys],
    );
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
