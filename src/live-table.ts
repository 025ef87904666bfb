import type { BackoffPolicy } from './backoff.js';
import type { Cache, CachedRows, CacheEntryInfo } from './cache/types.js';
import { defaultEnv, type Env } from './env.js';
import { errorInfo, InvalidInputError, isTransient, MasterRejectedError, OfflineMissError, UnknownOpError, VantageError, type ErrorInfo } from './errors.js';
import { logger } from './log.js';
import { overlayPending, pendingIds } from './overlay.js';
import { Flusher } from './queue/flusher.js';
import { MemQueue } from './queue/mem-queue.js';
import { defaultRetryPolicy } from './queue/retry-policy.js';
import type { OpKind, OpRecord, QueuedOp, WriteQueue } from './queue/types.js';
import type { LiveEvent, LiveStream, StreamState } from './stream/types.js';
import type { Id, PageRequest, Row, TableLike, WriteOptions } from './types.js';
import { checkId, checkRow } from './validate.js';

const log = logger('vantage-live:table');

export interface LiveTableOptions {
  /** Where writes wait for the master; default a MemQueue. Use an IdbQueue for writes that survive a reload. */
  queue?: WriteQueue;
  /** Changes made elsewhere; each event invalidates this table's cache key (E1). */
  stream?: LiveStream;
  /** Send writes here instead of to the master; reads still come from the master. */
  writeTarget?: TableLike;
  /** Rows per page fetched from the master when a read names no ipp; default 50. */
  masterIpp?: number;
  /** Backoff of transient write failures; default 1 s base, 5 min cap. */
  retryPolicy?: BackoffPolicy;
  /** Time, randomness, timers and "online"; default the platform's. */
  env?: Env;
}

/** A read with where it came from, for UIs that show it. */
export interface ReadResult {
  rows: Array<[Id, Row]>;
  cacheKey: string;
  source: 'cache' | 'master';
  /** The rows may be out of date: invalidated, and the master could not be reached to refetch them. */
  stale: boolean;
  /** Epoch ms when these rows (before the overlay) came from the master. */
  fetchedAt: number;
  /** Ids of rows with a write still waiting for the master (R3). */
  pendingIds: Id[];
}

/** Everything a UI may want to hear about a LiveTable. */
export type LiveTableEvent =
  | { type: 'read'; cacheKey: string; outcome: 'hit' | 'miss' | 'stale'; ms: number }
  | { type: 'queued'; op: QueuedOp }
  | { type: 'applied'; op: QueuedOp; result: unknown }
  | { type: 'retrying'; op: QueuedOp; error: ErrorInfo; retryAt: number }
  | { type: 'dead'; op: QueuedOp; error: ErrorInfo }
  | { type: 'queue'; pending: number; dead: number }
  | { type: 'invalidated'; prefix: string; reason: 'write' | 'event' }
  | { type: 'live'; event: LiveEvent }
  | { type: 'stream'; state: StreamState };

type Waiter = { resolve(value: unknown): void; reject(err: unknown): void };

/**
 * A table with a local cache and a write queue in front of a master. It is a
 * TableLike itself, so code written against TableLike uses it unchanged.
 *
 * Reads (R1-R3): cache first; a miss or a stale entry goes to the master and
 * fills the cache; with the master out of reach a stale entry is served and a
 * miss fails at once with OfflineMissError. Pending writes show on reads.
 *
 * Writes (W1-W5): validated, queued, then sent in order by one flusher; the
 * cache is invalidated only once the master confirmed.
 */
export class LiveTable implements TableLike {
  readonly masterIpp: number;
  readonly queue: WriteQueue;
  private readonly env: Env;
  private readonly flusher: Flusher;
  private readonly listeners = new Set<(e: LiveTableEvent) => void>();
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly unsubscribe: Array<() => void> = [];
  private pendingMemo: Promise<QueuedOp[]> | undefined;
  // Bumped by every invalidation, so a read that raced one stores its rows as stale.
  private generation = 0;
  // Whether a fresh entry may have been stored since the last invalidation. Without one, an invalidation has
  // nothing to mark (a write's own change event follows its invalidation at once). Sound because this
  // LiveTable is the only writer of entries under its cacheKey; true at start for entries of earlier runs.
  private freshSinceInvalidation = true;

  /**
   * @param master the table being cached: reads come from here, and writes unless `writeTarget` is set
   * @param cacheKey the caller's name for this view of the master; every cache entry of this table starts with it
   * @param cache where reads are kept
   */
  constructor(
    readonly master: TableLike,
    readonly cacheKey: string,
    readonly cache: Cache,
    opts: LiveTableOptions = {},
  ) {
    if (!cacheKey || cacheKey.includes('/')) throw new InvalidInputError(`Invalid cacheKey ${JSON.stringify(cacheKey)}: use a non-empty name without "/"`);
    this.masterIpp = opts.masterIpp ?? 50;
    this.queue = opts.queue ?? new MemQueue();
    this.env = opts.env ?? defaultEnv;
    const target = opts.writeTarget ?? master;
    this.flusher = new Flusher({
      queue: this.queue,
      table: this.name,
      apply: (op) => applyOp(target, op),
      policy: opts.retryPolicy ?? defaultRetryPolicy,
      env: this.env,
      onApplied: async (op, result) => {
        this.pendingMemo = undefined;
        await this.invalidate('write');
        this.emit({ type: 'applied', op, result });
        await this.emitQueueSize();
        this.settle(op.opId, (w) => w.resolve(result));
      },
      onRetry: (op, err, retryAt) => {
        this.pendingMemo = undefined;
        this.emit({ type: 'retrying', op, error: errorInfo(err), retryAt });
      },
      onDead: async (op, err) => {
        this.pendingMemo = undefined;
        this.emit({ type: 'dead', op, error: errorInfo(err) });
        await this.emitQueueSize();
        this.settle(op.opId, (w) => w.reject(err));
      },
    });
    if (opts.stream) {
      this.unsubscribe.push(opts.stream.subscribe((event) => void this.ingest(event)));
      if (opts.stream.onState) this.unsubscribe.push(opts.stream.onState((state) => this.emit({ type: 'stream', state })));
    }
  }

  get name(): string {
    return this.master.name;
  }

  get idField(): string {
    return this.master.idField;
  }

  /** The cache key of one page: `${cacheKey}/page_${page}`, with the ipp added when it is not `masterIpp`. */
  pageCacheKey(page: number, ipp = this.masterIpp): string {
    return ipp === this.masterIpp ? `${this.cacheKey}/page_${page}` : `${this.cacheKey}/page_${page}_ipp_${ipp}`;
  }

  /** The cache key of one row: `${cacheKey}/id/${id}`. */
  idCacheKey(id: Id): string {
    return `${this.cacheKey}/id/${id}`;
  }

  // ---- read path ----

  /** One page (or the whole table when `req` is omitted), with where it came from. */
  async read(req?: Partial<PageRequest>): Promise<ReadResult> {
    const page = req?.page ?? (req?.ipp ? 1 : undefined);
    const ipp = req?.ipp ?? this.masterIpp;
    if (page !== undefined && !(Number.isInteger(page) && page >= 1 && Number.isInteger(ipp) && ipp >= 1)) {
      throw new InvalidInputError(`Bad page request ${JSON.stringify(req)}: page and ipp are integers from 1`);
    }
    const key = page === undefined ? `${this.cacheKey}/all` : this.pageCacheKey(page, ipp);
    const cached = await this.readThrough(key, () => this.master.list(page === undefined ? undefined : { page, ipp }), page);
    const ops = await this.pending();
    return { ...cached, rows: overlayPending(cached.rows, ops, this.idField, page), pendingIds: pendingIds(ops) };
  }

  /** One row, with where it came from. */
  async readOne(id: Id): Promise<ReadResult> {
    checkId(id);
    const key = this.idCacheKey(id);
    const cached = await this.readThrough(key, async () => {
      const row = await this.master.get(id);
      return row ? [[id, row]] : [];
    });
    const ops = (await this.pending()).filter((op) => op.id === id || op.kind === 'deleteAll');
    return { ...cached, rows: overlayPending(cached.rows, ops, this.idField, undefined), pendingIds: pendingIds(ops) };
  }

  async list(req?: PageRequest): Promise<Array<[Id, Row]>> {
    return (await this.read(req)).rows;
  }

  async get(id: Id): Promise<Row | undefined> {
    return (await this.readOne(id)).rows[0]?.[1];
  }

  private async readThrough(key: string, load: () => Promise<Array<[Id, Row]>>, page?: number): Promise<Omit<ReadResult, 'pendingIds'>> {
    const started = this.env.now();
    const done = (outcome: 'hit' | 'miss' | 'stale', entry: CachedRows, source: 'cache' | 'master') => {
      const ms = this.env.now() - started;
      log.debug(`read ${outcome}`, { cacheKey: key, page, outcome: outcome === 'miss' ? 'populated' : outcome, ms, rows: entry.rows });
      this.emit({ type: 'read', cacheKey: key, outcome, ms });
      return { rows: entry.rows, cacheKey: key, source, stale: !!entry.stale, fetchedAt: entry.fetchedAt };
    };
    const cached = await this.cache.get(key);
    if (cached && !cached.stale) return done('hit', cached, 'cache');
    log.debug(cached ? 'stale, refetching' : 'miss', { cacheKey: key, page, outcome: cached ? 'stale' : 'miss' });
    if (!this.env.isOnline()) {
      if (cached) return done('stale', cached, 'cache');
      throw new OfflineMissError(key);
    }
    const generation = this.generation;
    let rows: Array<[Id, Row]>;
    try {
      rows = await load();
    } catch (err) {
      log.debug('master read failed', { cacheKey: key, page, outcome: 'failed', error: errorInfo(err) });
      if (!isTransient(err)) throw err;
      if (cached) return done('stale', cached, 'cache');
      throw new OfflineMissError(key, err);
    }
    const entry: CachedRows = { rows, fetchedAt: this.env.now(), stale: generation !== this.generation };
    if (!entry.stale) this.freshSinceInvalidation = true;
    await this.cache.put(key, entry);
    return done('miss', entry, 'master');
  }

  // ---- write path ----

  async insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(row, this.idField, id);
    return (await this.write('insert', id, row, opts, () => ({ ...row, [this.idField]: id }))) as Row;
  }

  /** With `wait: 'queued'` the id is not known yet: the op id is returned, and the row shows under it until applied. */
  async insertReturnId(row: Row, opts?: WriteOptions): Promise<Id> {
    checkRow(row, this.idField);
    return (await this.write('insertReturnId', undefined, row, opts, (opId) => opId)) as Id;
  }

  async replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(row, this.idField, id);
    return (await this.write('replace', id, row, opts, () => ({ ...row, [this.idField]: id }))) as Row;
  }

  /** With `wait: 'queued'` only the patched fields are known: they are returned, with the id. */
  async patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(partial, this.idField, id);
    return (await this.write('patch', id, partial, opts, () => ({ ...partial, [this.idField]: id }))) as Row;
  }

  async delete(id: Id, opts?: WriteOptions): Promise<void> {
    checkId(id);
    await this.write('delete', id, undefined, opts, () => undefined);
  }

  async deleteAll(opts?: WriteOptions): Promise<void> {
    await this.write('deleteAll', undefined, undefined, opts, () => undefined);
  }

  private async write(kind: OpKind, id: Id | undefined, row: Row | undefined, opts: WriteOptions | undefined, queuedReply: (opId: string) => unknown): Promise<unknown> {
    const opId = opts?.opId ?? crypto.randomUUID();
    const idempotencyKey = opts?.idempotencyKey ?? crypto.randomUUID();
    const { record, created } = await this.queue.enqueue({ opId, table: this.name, kind, id, row, idempotencyKey, enqueuedAt: this.env.now() });
    if (created) {
      this.pendingMemo = undefined;
      log.debug('enqueued', { op: kind, opId, id, cacheKey: this.cacheKey, row });
      this.emit({ type: 'queued', op: record as QueuedOp });
      await this.emitQueueSize();
    }
    const applied = this.waitFor(opId);
    void this.flush({ onlyDue: true });
    if (opts?.wait === 'queued') {
      applied.catch(() => {}); // the outcome reaches the caller as an event, not as an unhandled rejection
      return record.status === 'applied' ? record.result : queuedReply(opId);
    }
    return applied;
  }

  /**
   * Send queued ops now. By default the oldest op is sent even if it is waiting
   * out a backoff (the caller has reason to think the master is back); with
   * `onlyDue`, only ops whose time has come. Resolves when nothing more is due.
   */
  flush(opts: { onlyDue?: boolean } = {}): Promise<void> {
    return this.flusher.flush({ skipBackoff: !opts.onlyDue });
  }

  /** Resolves with the master's reply once the op is applied; rejects with its error once it is dead or discarded. */
  waitFor(opId: string): Promise<unknown> {
    const promise = new Promise<unknown>((resolve, reject) => {
      const list = this.waiters.get(opId) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(opId, list);
    });
    // Registered first, then checked, so an outcome that lands in between is not missed.
    void this.queue.record(opId).then((rec) => this.settleFromRecord(opId, rec), (err) => this.settle(opId, (w) => w.reject(err)));
    return promise;
  }

  private settleFromRecord(opId: string, rec: OpRecord | undefined): void {
    if (!rec) this.settle(opId, (w) => w.reject(new UnknownOpError(opId)));
    else if (rec.status === 'applied') this.settle(opId, (w) => w.resolve(rec.result));
    else if (rec.status === 'dead') {
      const { status = 400, code = 'rejected', message = 'refused' } = rec.lastError ?? {};
      this.settle(opId, (w) => w.reject(new MasterRejectedError(status, code, message)));
    }
  }

  private settle(opId: string, how: (w: Waiter) => void): void {
    const list = this.waiters.get(opId);
    this.waiters.delete(opId);
    list?.forEach(how);
  }

  /** Ops of this table still waiting for the master: queued and in-flight, in order. */
  async pending(): Promise<QueuedOp[]> {
    this.pendingMemo ??= this.queue.ops(this.name).then((ops) => ops.filter((op) => op.status !== 'dead'));
    return this.pendingMemo;
  }

  /** Ops of this table the master refused for good, with its reason (W4). */
  async deadLetters(): Promise<QueuedOp[]> {
    return (await this.queue.ops(this.name)).filter((op) => op.status === 'dead');
  }

  /** Send a dead op again, at its old place in the queue. */
  async retry(opId: string): Promise<void> {
    await this.queue.revive(opId, this.env.now());
    this.pendingMemo = undefined;
    await this.emitQueueSize();
    void this.flush({ onlyDue: true });
  }

  /** Drop a queued or dead op without sending it; whoever waits for it is told. */
  async discard(opId: string): Promise<void> {
    await this.queue.discard(opId);
    this.pendingMemo = undefined;
    this.settle(opId, (w) => w.reject(new VantageError('op_discarded', `Op ${opId} was discarded`)));
    await this.emitQueueSize();
  }

  /** This table's cache entries (key, row count, age, stale) without their rows, for inspectors; [] when the cache cannot list them. */
  async cacheEntries(): Promise<CacheEntryInfo[]> {
    return (await this.cache.inspect?.(`${this.cacheKey}/`)) ?? [];
  }

  // ---- event path ----

  /** Take in one change made elsewhere: invalidates this table (E1). Streams call it; so does a worker fed by a page's stream. */
  async ingest(event: LiveEvent): Promise<void> {
    log.debug('live event', { cacheKey: this.cacheKey, id: 'id' in event ? event.id : undefined, kind: event.kind, eventId: event.eventId });
    this.emit({ type: 'live', event });
    await this.invalidate('event');
  }

  /** Mark every cached entry of this table stale (E1, W5): the next read online refetches. */
  async invalidate(reason: 'write' | 'event' = 'event'): Promise<void> {
    this.generation++;
    const prefix = `${this.cacheKey}/`;
    if (this.freshSinceInvalidation) {
      this.freshSinceInvalidation = false;
      await this.cache.invalidatePrefix(prefix);
    }
    log.debug('invalidated', { cacheKey: this.cacheKey, outcome: 'invalidated', reason });
    this.emit({ type: 'invalidated', prefix, reason });
  }

  // ---- events ----

  /** Hear about reads, queue changes, op outcomes, invalidations and stream state. Returns an unsubscribe function. */
  subscribe(listener: (e: LiveTableEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(event: LiveTableEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  private async emitQueueSize(): Promise<void> {
    if (this.listeners.size === 0) return;
    this.emit({ type: 'queue', ...(await this.queue.counts(this.name)) });
  }

  /** Stop listening to the stream and stop retry timers. */
  close(): void {
    this.unsubscribe.forEach((u) => u());
    this.flusher.close();
  }
}

/** Send one queued op to a table, with its idempotency key. */
function applyOp(target: TableLike, op: QueuedOp): Promise<unknown> {
  const opts = { idempotencyKey: op.idempotencyKey };
  switch (op.kind) {
    case 'insert':
      return target.insert(op.id!, op.row!, opts);
    case 'insertReturnId':
      return target.insertReturnId(op.row!, opts);
    case 'replace':
      return target.replace(op.id!, op.row!, opts);
    case 'patch':
      return target.patch(op.id!, op.row!, opts);
    case 'delete':
      return target.delete(op.id!, opts);
    case 'deleteAll':
      return target.deleteAll(opts);
  }
}
