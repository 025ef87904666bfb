import type { Row } from '../validate.js';
import type { HttpError } from '../errors.js';

/**
 * The master's storage, one interface with two implementations: SQLite
 * (`sqlite.ts`, the embedded default, one process) and PostgreSQL
 * (`postgres.ts`, any number of master processes on one database). Every
 * method is async so both fit; the SQLite one answers from a synchronous
 * driver underneath.
 */

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
/** An event as both storages keep it in their log table. */
export interface EventRecord {
  id: number;
  tbl: string;
  owner: Owner;
  kind: ChangeKind;
  row_id: string | null;
}

export const toEvent = (r: EventRecord): ChangeEvent =>
  r.row_id === null
    ? { eventId: r.id, table: r.tbl, owner: r.owner, kind: r.kind }
    : { eventId: r.id, table: r.tbl, owner: r.owner, kind: r.kind, id: r.row_id };

export interface StoredResponse {
  status: number;
  body: unknown;
}

/** A write that carries an Idempotency-Key. */
export interface KeyedWrite {
  key: string;
  /** Hash of method, path and body: the same key with another request is refused. */
  fingerprint: string;
  /** The client address that sent it; bounds are per client. */
  client: string;
}

/**
 * What is kept for an Idempotency-Key (see idempotency.ts): enough to
 * recognise the request again and to answer a replay, not a copy of the row.
 */
export interface KeyRecord extends KeyedWrite {
  /** Keys are per owner: the same key from two users names two requests. */
  owner: Owner;
  status: number;
  table: string;
  /** The row the write answered with; null for bodiless answers. */
  rowId: string | null;
  /** The answer's JSON when small; otherwise null and a replay re-reads `rowId`. */
  body: string | null;
}

/**
 * What a write did: the response to send and the change to log. The change
 * also says what happens to the table: `inserted` and `updated` store `body`,
 * `deleted` removes the row `id`, `changed` empties the table.
 */
export interface Applied {
  status: number;
  body: Row | null;
  change: { kind: ChangeKind; id?: string };
}

/**
 * One write request, decided inside the storage's transaction. `decide` sees
 * the row `id` as the transaction sees it and either returns what to do or
 * throws an HttpError (nothing is then written). It is synchronous and pure,
 * so each storage can run it inside its own kind of transaction.
 */
export interface Write {
  table: string;
  /** The row the write reads first; undefined for a whole-table write. */
  id: string | undefined;
  decide(existing: Row | undefined): Applied;
}

/** The result of a write request: either freshly applied (with its event) or replayed. */
export type Committed =
  | (StoredResponse & { replayed: false; event: ChangeEvent })
  | (StoredResponse & { replayed: true });

export interface StorageOptions {
  eventRetention: number;
  idempotencyTtlMs: number;
  /** Keys kept in total and per client address; past them the oldest go first. */
  idempotencyMaxKeys: number;
  idempotencyMaxKeysPerClient: number;
}

/** Sessions as stored: the token only as its hash (auth/sessions.ts makes and checks tokens). */
export interface SessionRows {
  /** Stores a session, drops expired ones, and keeps the user's newest `maxPerUser`. */
  insert(tokenHash: string, user: string, expiresAt: number, now: number, maxPerUser: number): Promise<void>;
  /** The session of this hash unless it expired by `now`. */
  find(tokenHash: string, now: number): Promise<{ user: string; expiresAt: number } | undefined>;
  remove(tokenHash: string): Promise<void>;
}

/**
 * Told of every committed event, in event id order, once each; in batches
 * (one write's event, or a page of the log read at once), so a feed can send
 * what arrived together in one go.
 */
export type EventListener = (events: ChangeEvent[]) => void;

/** One write of a batch and its key. */
export interface BatchItem {
  write: Write;
  keyed: KeyedWrite | undefined;
}

export interface Storage {
  readonly kind: 'sqlite' | 'postgres';
  getRow(owner: Owner, table: string, id: string): Promise<Row | undefined>;
  /** One page of rows in insertion order, and how many the table has. */
  listRows(owner: Owner, table: string, offset: number, limit: number): Promise<{ rows: Row[]; total: number }>;
  /**
   * Applies a write exactly once per idempotency key: the key lookup, the
   * write, its change event and the remembered answer share one transaction
   * (commit.ts says why).
   */
  commit(owner: Owner, write: Write, keyed: KeyedWrite | undefined, now: number): Promise<Committed>;
  /**
   * Applies writes in order in one transaction, each as `commit` would (its
   * key, its row, its event), each refusal (an HttpError from `decide` or the
   * key check) undoing only that write: a result per write, refusals as the
   * error. Without it the master commits a batch one write at a time.
   */
  commitBatch?(owner: Owner, writes: BatchItem[], now: number): Promise<Array<Committed | HttpError>>;
  /** Replaces a table's rows in one transaction, logged as one `changed` event. */
  replaceTable(owner: Owner, table: string, rows: Iterable<Row>): Promise<ChangeEvent>;
  /** The newest committed event id (0 for a fresh store); survives trimming. */
  latestEventId(): Promise<number>;
  /** Every event with an id up to this one has been trimmed away. */
  trimmedThrough(): Promise<number>;
  /** Up to `limit` of one owner's events of one table after `eventId`, in order. */
  eventsAfter(owner: Owner, table: string, eventId: number, limit: number): Promise<ChangeEvent[]>;
  /**
   * Registers the change feed's source: every event committed from now on,
   * by this process or (Postgres) any other master on the same database.
   */
  follow(listener: EventListener): void;
  readonly sessions: SessionRows;
  close(): Promise<void>;
}
