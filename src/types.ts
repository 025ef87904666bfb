import type { Delivery } from './master/adapters.js';

/** A row's primary key, as the master spells it. */
export type Id = string;

/** One record: JSON-compatible values only. */
export type Row = Record<string, unknown>;

/** A page of a list. `page` is 1-based; `ipp` is items per page. */
export interface PageRequest {
  page: number;
  ipp: number;
}

export interface WriteOptions {
  /** Sent to the master so that a retried write is applied once. The queue sets it. */
  idempotencyKey?: string;
  /** LiveTable only: return once the write is durable ('queued') or once the master confirmed it ('applied', the default). */
  wait?: 'applied' | 'queued';
  /** LiveTable only: the queue op's id. A write repeated with the same opId is queued once. */
  opId?: string;
  /**
   * Masters only: apply the write only if the row is still at this version
   * (its `_version`), sent as `If-Match`; otherwise ConflictError. The queue
   * sets it from the version the write was made against.
   */
  ifMatch?: string | number;
}

/** A table-shaped data source: the master, or a LiveTable in front of one (the Rust crate's AnyTable). */
export interface TableLike {
  readonly name: string;
  readonly idField: string;
  /** Rows in the master's order: one page, or every row when `req` is omitted. */
  list(req?: PageRequest): Promise<Array<[Id, Row]>>;
  get(id: Id): Promise<Row | undefined>;
  insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row>;
  insertReturnId(row: Row, opts?: WriteOptions): Promise<Id>;
  replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row>;
  patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row>;
  delete(id: Id, opts?: WriteOptions): Promise<void>;
  deleteAll(opts?: WriteOptions): Promise<void>;
  /** What a retried write whose answer was lost turns into (RestTable: its adapter's); undefined for a table in this process. */
  readonly delivery?: Delivery;
  /**
   * Several writes in one request, in order, each with its own key: an answer
   * per write, as its own call would have resolved or thrown. Undefined when
   * the master takes no batches (the caller sends them one by one); throws
   * only when the request as a whole failed (no answer, 5xx, credentials).
   */
  writeBatch?(writes: BatchWrite[]): Promise<Settled[] | undefined>;
}

/** One write of a batch: what the TableLike method of its kind would take. */
export type BatchWrite =
  | { kind: 'insert' | 'replace' | 'patch'; id: Id; row: Row; opts: WriteOptions }
  | { kind: 'insertReturnId'; row: Row; opts: WriteOptions }
  | { kind: 'delete'; id: Id; opts: WriteOptions };

/** One write's answer in a batch: what its own call resolved with, or threw. */
export type Settled = { ok: true; value: unknown } | { ok: false; error: unknown };
