import { readKey, rowKey, tableOf, type Cache, type CachedRows, type CacheEntryInfo } from './cache/types.js';
import { defaultEnv, type Env } from './env.js';
import { baseFrom, resolveBase, sendBatchWithPolicy, sendWithPolicy, versionOf, type ConflictPolicy } from './conflicts.js';
import {
  aboutOp,
  ConflictError,
  DeadLetterError,
  errorInfo,
  InvalidInputError,
  isTransient,
  MasterRejectedError,
  MasterUnavailableError,
  OfflineMissError,
  UnknownOpError,
  VantageError,
  type ErrorInfo,
} from './errors.js';
import { Listeners } from './listeners.js';
import { logger } from './log.js';
import { overlayConflicts, overlayPending, pendingIds } from './overlay.js';
import { OfflineReady, type OfflineStatus, type PageRange, type PrefetchEvent, type PrefetchOptions, type PrefetchResult } from './prefetch.js';
import type { CachePin } from './cache/types.js';
import { MemQueue } from './queue/mem-queue.js';
import { defaultRetryPolicy, type RetryPolicy } from './queue/retry-policy.js';
import { TableQueue, type PendingOp, type QueueOutcome } from './queue/table-queue.js';
import { opTarget, type DeathReason, type OpBase, type OpBody, type OpRecord, type QueuedOp, type WriteQueue } from './queue/types.js';
import type { LiveEvent, LiveStream, StreamState } from './stream/types.js';
import type { Id, PageRequest, Row, TableLike, WriteOptions } from './types.js';
import { checkId, checkRow } from './validate.js';

const log = logger('vantage-live:table');

/**
 * When a read may answer from a stale entry. `strict`: a stale entry is
 * refetched first whenever the master can be reached. `swr`
 * (stale-while-revalidate): the read answers from the cache at once, flagged
 * `stale`, and refetches in the background; a `refreshed` event says when
 * fresh rows are in.
 */
export type Freshness = 'strict' | 'swr';

export interface ReadOptions {
  /** This read's freshness; default the table's. */
  freshness?: Freshness;
}

export interface LiveTableOptions {
  /** Where writes wait for the master; default a MemQueue. Use an IdbQueue for writes that survive a reload. */
  queue?: WriteQueue;
  /** Changes made elsewhere; each event invalidates this table's cache key (E1). */
  stream?: LiveStream;
  /** Send writes here instead of to the master; reads still come from the master. */
  writeTarget?: TableLike;
  /** Rows per page fetched from the master when a read names no ipp; default 50. */
  masterIpp?: number;
  /**
   * Backoff of transient write failures and when to give up; each field
   * defaults to `defaultRetryPolicy`'s (1 s base, 5 min cap, 20 answered
   * failures, 7 days, a 24 h idempotency window). Views over one master table
   * that share a queue share one flusher: the first view's policy is used.
   */
  retryPolicy?: Partial<RetryPolicy>;
  /**
   * The most queued ops a flush sends in one request, to a master that takes
   * batches (docs/protocol.md, "Batches"); default 100; 1 sends every op alone.
   * Shared like `retryPolicy`.
   */
  maxBatch?: number;
  /** When reads may answer from a stale entry; default 'strict'. */
  freshness?: Freshness;
  /** An entry older than this is stale even if no invalidation said so (for masters without a change feed), in ms. */
  maxAgeMs?: number;
  /** Time, randomness, timers and "online"; default the platform's. */
  env?: Env;
  /**
   * Send the version a patch, replace or delete was made against (`If-Match`),
   * so it never silently overwrites a newer change; default true. False: every
   * write is last-writer-wins, as with masters without versions.
   */
  versions?: boolean;
  /** What a write that meets a newer version of its row does (README, "Conflicts"); default 'server-wins'. */
  onConflict?: ConflictPolicy;
  /** The cache's byte budget (it is the cache's, shared by every table in it); default the cache's own, 50 MiB. */
  cacheBudgetBytes?: number;
}

/** A read with where it came from, for UIs that show it. */
export interface ReadResult {
  rows: Array<[Id, Row]>;
  cacheKey: string;
  source: 'cache' | 'master';
  /** The rows may be out of date: invalidated or older than `maxAgeMs`, and not refetched (offline, master unreachable, or `swr`). */
  stale: boolean;
  /** A background refetch of this entry was started (`swr`); a `refreshed` event follows when fresh rows are in. */
  revalidating: boolean;
  /** Epoch ms when these rows (before the overlay) came from the master. */
  fetchedAt: number;
  /** Ids of rows with a write still waiting for the master (R3); an insertReturnId's row counts under its temporary id (its opId). */
  pendingIds: Id[];
  /** Rows whose write met a newer version and waits for the app: they show the master's row. `opId` is the dead letter to retry, discard or resolve. */
  conflicts: Array<{ id: Id; opId: string }>;
}

/** Everything a UI may want to hear about a LiveTable. */
export type LiveTableEvent =
  | { type: 'read'; cacheKey: string; outcome: 'hit' | 'miss' | 'stale'; ms: number }
  | { type: 'queued'; op: QueuedOp }
  | { type: 'applied'; op: QueuedOp; result: unknown }
  /** An insertReturnId was applied: the row shown under `temporaryId` is `id` from now on, and queued ops that named it were rewritten. */
  | { type: 'assigned'; opId: string; temporaryId: Id; id: Id }
  | { type: 'retrying'; op: QueuedOp; error: ErrorInfo; retryAt: number }
  | { type: 'dead'; op: QueuedOp; error: ErrorInfo; reason: DeathReason }
  /** A write met a newer version of its row and waits for the app (server-wins): `theirs` is the master's row (null: deleted). A `dead` event comes with it. */
  | { type: 'conflict'; op: QueuedOp; theirs: Row | null }
  /** A dead letter was sent to the end of the queue; `overtaken` ops on its row were applied after it died, and it will land after them. */
  | { type: 'retried'; op: QueuedOp; overtaken: number }
  | { type: 'queue'; pending: number; dead: number }
  | { type: 'invalidated'; prefix: string; reason: 'write' | 'event' }
  /** A background refetch (`swr`) stored fresh rows under `cacheKey`: a view showing them may read again. */
  | { type: 'refreshed'; cacheKey: string }
  | { type: 'live'; event: LiveEvent }
  | { type: 'stream'; state: StreamState }
  /** Writes wait for credentials (`required`: the master answered 401 or sent a sign-in redirect), or go again (`ok`). */
  | { type: 'auth'; state: 'required' | 'ok'; error?: ErrorInfo }
  /** A prefetch's progress, page by page in order; its last event has `state` done, cancelled or failed. */
  | ({ type: 'prefetch' } & PrefetchEvent);

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
  private readonly writes: TableQueue;
  private readonly listeners = new Listeners<LiveTableEvent>('table event');
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly unsubscribe: Array<() => void> = [];
  private readonly freshness: Freshness;
  /** An entry older than this reads as stale (`LiveTableOptions.maxAgeMs`). */
  readonly maxAgeMs: number | undefined;
  private readonly versions: boolean;
  // Background refetches (swr) by cache key: one at a time per key.
  private readonly revalidating = new Map<string, Promise<void>>();
  // A miss answers before its rows are stored: the puts under way, by key. A read of the key waits for its put; idle() for all.
  private readonly puts = new Map<string, Promise<void>>();
  private closed = false;
  private stream: LiveStream | undefined;
  private streamState: StreamState | undefined;
  // Prefetches, pins and the background refresh of pinned pages; user reads waiting for the master go first.
  private readonly offline: OfflineReady;
  private readonly background = new Set<Promise<unknown>>();
  private userReads = 0;
  private readsIdleWaiters: Array<() => void> = [];

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
    this.freshness = opts.freshness ?? 'strict';
    this.maxAgeMs = opts.maxAgeMs;
    this.versions = opts.versions ?? true;
    if (opts.cacheBudgetBytes !== undefined) cache.setBudget?.(opts.cacheBudgetBytes);
    const table = this;
    this.offline = new OfflineReady({
      cacheKey,
      masterIpp: this.masterIpp,
      cache,
      env: this.env,
      pageCacheKey: (page) => this.pageCacheKey(page),
      fetchPage: async (page) => (await this.fetchInto(this.pageCacheKey(page), () => master.list({ page, ipp: this.masterIpp }), { stored: true })).rows.length,
      stored: () => this.stored(),
      readsIdle: () => (this.userReads === 0 ? Promise.resolve() : new Promise<void>((resolve) => this.readsIdleWaiters.push(resolve))),
      track: (work) => {
        const done = work.catch(() => {}).finally(() => this.background.delete(done));
        this.background.add(done);
      },
      emitPrefetch: (event) => this.emit({ type: 'prefetch', ...event }),
      emitRefreshed: (key) => this.emit({ type: 'refreshed', cacheKey: key }),
      get closed() {
        return table.closed;
      },
    });
    const target = opts.writeTarget ?? master;
    const policy = opts.onConflict ?? 'server-wins';
    this.writes = TableQueue.of(this.queue, this.name, {
      apply: async (op) => sendWithPolicy(target, op, await resolveBase(op, this.queue), policy),
      applyBatch: async (ops) => sendBatchWithPolicy(target, await Promise.all(ops.map(async (op) => ({ op, base: await resolveBase(op, this.queue) }))), policy),
      maxBatch: opts.maxBatch,
      policy: { ...defaultRetryPolicy, ...opts.retryPolicy },
      env: this.env,
    });
    this.unsubscribe.push(this.writes.attach((outcome) => this.hear(outcome)));
    if (opts.stream) {
      this.unsubscribe.push(opts.stream.subscribe((event) => void this.ingest(event).catch(() => {})));
      if (opts.stream.onState) {
        this.unsubscribe.push(
          opts.stream.onState((state) => {
            this.streamState = state;
            this.emit({ type: 'stream', state });
            // The feed's credentials were refused: the table wants new ones, as for a 401 on a write.
            if (state === 'auth-required') this.emit({ type: 'auth', state: 'required' });
          }),
        );
      }
      this.stream = opts.stream;
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
    return readKey(this.cacheKey, this.masterIpp, { page, ipp })!.key;
  }

  /** The cache key of one row: `${cacheKey}/id/${id}`. */
  idCacheKey(id: Id): string {
    return rowKey(this.cacheKey, id);
  }

  // ---- read path ----

  /** One page (or the whole table when `req` is omitted), with where it came from. */
  async read(req?: Partial<PageRequest>, opts?: ReadOptions): Promise<ReadResult> {
    const read = readKey(this.cacheKey, this.masterIpp, req);
    if (!read) throw new InvalidInputError(`Bad page request ${JSON.stringify(req)}: page and ipp are integers from 1`);
    const { key, page, ipp } = read;
    const cached = await this.readThrough(key, () => this.master.list(page === undefined ? undefined : { page, ipp }), opts, page);
    const [ops, conflicts] = await Promise.all([this.pending(), this.writes.conflicts()]);
    const rows = overlayPending(overlayConflicts(cached.rows, conflicts), ops, this.idField, page);
    return { ...cached, rows, pendingIds: pendingIds(ops), conflicts: conflictsOf(conflicts) };
  }

  /** One row, with where it came from. */
  async readOne(id: Id, opts?: ReadOptions): Promise<ReadResult> {
    checkId(id);
    const key = this.idCacheKey(id);
    const cached = await this.readThrough(
      key,
      async () => {
        const row = await this.master.get(id);
        return row ? [[id, row]] : [];
      },
      opts,
    );
    const ops = (await this.pending()).filter((op) => op.kind === 'deleteAll' || opTarget(op) === id);
    const conflicts = (await this.writes.conflicts()).filter((op) => opTarget(op) === id);
    const rows = overlayPending(overlayConflicts(cached.rows, conflicts), ops, this.idField, undefined);
    return { ...cached, rows, pendingIds: pendingIds(ops), conflicts: conflictsOf(conflicts) };
  }

  async list(req?: PageRequest): Promise<Array<[Id, Row]>> {
    return (await this.read(req)).rows;
  }

  async get(id: Id): Promise<Row | undefined> {
    return (await this.readOne(id)).rows[0]?.[1];
  }

  /** Resolves once the background refetches, and the puts of rows already answered, started so far have ended (a service worker holds itself awake for them). */
  async idle(): Promise<void> {
    await Promise.all([...this.revalidating.values(), ...this.background, ...this.puts.values()]);
  }

  // ---- offline-ready: prefetch and pin (src/prefetch.ts) ----

  /** Fill the cache with pages ahead of use (a range, or the whole table up to `maxRows`), with `prefetch` events in page order; `signal` stops it between pages. */
  prefetch(opts?: PrefetchOptions, signal?: AbortSignal): Promise<PrefetchResult> {
    return this.offline.prefetch(opts, signal);
  }

  /** Start a prefetch and answer with its id at once; `prefetch` events carry its progress and end (how pages prefetch across the bridge). */
  startPrefetch(opts?: PrefetchOptions): { id: string } {
    return this.offline.start(opts);
  }

  /** Stop a prefetch by its id, between two pages. */
  cancelPrefetch(id: string): void {
    this.offline.cancel(id);
  }

  /** Keep a page range (or the whole table up to `maxRows`) available offline: never evicted, refreshed in the background once invalidated. */
  pin(range: PageRange): Promise<CachePin> {
    return this.offline.pin(range);
  }

  /** Let a pinned range be evicted again. */
  unpin(id: string): Promise<void> {
    return this.offline.unpin(id);
  }

  /** Cache size and budget, pinned ranges and their freshness, the last background refresh. */
  offlineStatus(): Promise<OfflineStatus> {
    return this.offline.status();
  }

  /** Refetch stale pinned pages now, in the background (after `online`, or on a periodic sync); resolves when done. */
  refreshPinned(): Promise<void> {
    return this.offline.refreshSoon();
  }

  private async readThrough(key: string, load: () => Promise<Array<[Id, Row]>>, opts: ReadOptions | undefined, page?: number): Promise<Omit<ReadResult, 'pendingIds' | 'conflicts'>> {
    const started = this.env.now();
    const done = (outcome: 'hit' | 'miss' | 'stale', entry: CachedRows, source: 'cache' | 'master', revalidating = false) => {
      const ms = this.env.now() - started;
      log.debug(`read ${outcome}`, { cacheKey: key, page, outcome: outcome === 'miss' ? 'populated' : outcome, ms, rows: entry.rows });
      this.emit({ type: 'read', cacheKey: key, outcome, ms });
      return { rows: entry.rows, cacheKey: key, source, stale: outcome === 'stale', revalidating, fetchedAt: entry.fetchedAt };
    };
    const putting = this.puts.get(key);
    if (putting) await putting;
    // The generation comes with the entry: a miss loads under it without reading it again.
    const { entry: cached, generation } = this.cache.lookup ? await this.cache.lookup(key) : { entry: await this.cache.get(key), generation: undefined };
    const stale = cached && (cached.stale || (this.maxAgeMs !== undefined && this.env.now() - cached.fetchedAt > this.maxAgeMs));
    if (cached && !stale) return done('hit', cached, 'cache');
    const online = this.env.isOnline();
    if (cached && online && (opts?.freshness ?? this.freshness) === 'swr') {
      this.revalidate(key, load, generation);
      return done('stale', cached, 'cache', true);
    }
    log.debug(cached ? 'stale, refetching' : 'miss', { cacheKey: key, page, outcome: cached ? 'stale' : 'miss' });
    if (!online) {
      if (cached) return done('stale', cached, 'cache');
      throw new OfflineMissError(key);
    }
    let entry: CachedRows;
    this.userReads++;
    try {
      entry = await this.fetchInto(key, load, { generation });
    } catch (err) {
      log.debug('master read failed', { cacheKey: key, page, outcome: 'failed', error: errorInfo(err) });
      if (!isTransient(err)) throw err;
      if (cached) return done('stale', cached, 'cache');
      throw new OfflineMissError(key, err);
    } finally {
      if (--this.userReads === 0) this.readsIdleWaiters.splice(0).forEach((resolve) => resolve());
    }
    return done('miss', entry, 'master');
  }

  /**
   * Load rows from the master and store them under `key`. The generation is
   * read before the load (or given, read with the lookup that missed): rows
   * that race an invalidation are stored stale, by any worker, whenever their
   * put lands. So the put need not come first: a user's read answers at once
   * and stores after (`idle()` waits for it); prefetches and background
   * refetches (`stored`) resolve once the rows are in.
   *
   * Rows are read only while no insertReturnId is in doubt (see settleInDoubt),
   * so the master's row and its pending overlay never show together under two
   * ids; one sent during the load makes the load start again.
   */
  private async fetchInto(key: string, load: () => Promise<Array<[Id, Row]>>, opts: { generation?: number; stored?: boolean } = {}): Promise<CachedRows> {
    let generation = opts.generation;
    for (let round = 1; ; round++) {
      const told = this.writes.changes;
      // The ops the overlay shows, read once per queue change: with no insertReturnId among them none can be in doubt.
      const returnIds = (await this.pending()).some((op) => op.kind === 'insertReturnId');
      if (returnIds && (await this.settleInDoubt())) generation = undefined;
      generation ??= await this.cache.generation(tableOf(key));
      const rows = await load();
      // Only an op this realm queued or revived during the load (its `changes` moved) can be in doubt now: read the queue then.
      if ((returnIds || this.writes.changes !== told) && (await this.inDoubt()).length > 0) {
        generation = undefined;
        if (round < 3) continue;
        throw new MasterUnavailableError(`${this.name}: a row created with insertReturnId is still in doubt; not reading the master`);
      }
      const entry: CachedRows = { rows, fetchedAt: this.env.now(), generation };
      const put = this.storeAfter(key, entry);
      if (opts.stored) await put;
      return entry;
    }
  }

  // The put of one entry, after the put under way for its key if any (the later rows land last). A put that fails is
  // logged: the rows were answered, and the next read of the key is a miss again. A closed table stores nothing new.
  private storeAfter(key: string, entry: CachedRows): Promise<void> {
    const before = this.puts.get(key);
    const store = () => (this.closed ? undefined : this.cache.put(key, entry));
    const put = (before ? before.then(store) : Promise.resolve(store()))
      .catch((err) => log.warn('cache put failed', { cacheKey: key, error: errorInfo(err) }))
      .finally(() => this.puts.get(key) === put && this.puts.delete(key));
    this.puts.set(key, put);
    return put;
  }

  // Every put started so far has landed (or failed): what reads the cache beside `read` sees the rows already answered.
  private async stored(): Promise<void> {
    await Promise.all(this.puts.values());
  }

  // An insertReturnId that was sent and not answered may be on the master under an id only its answer tells: a
  // read now could show the row twice (the master's row, and the overlay's under the temporary id). It is sent
  // again first (its idempotency key replays the master's answer, so the temporary id gives way to the real
  // one); if it stays in doubt the read fails as transient, and answers from the cache or as offline. True when
  // it had to send (the table may have been invalidated since its generation was read).
  private async settleInDoubt(): Promise<boolean> {
    if ((await this.inDoubt()).length === 0) return false;
    await this.writes.flusher.flush({ skipBackoff: true });
    const left = await this.inDoubt();
    if (left.length > 0) {
      throw new MasterUnavailableError(`${this.name}: the insertReturnId ${left.map((op) => op.opId).join(', ')} is in doubt (sent, not answered); not reading the master until it is`);
    }
    return true;
  }

  // Read from the queue itself, not the memo of pending(): taking an op marks it in-flight without an outcome.
  private async inDoubt(): Promise<QueuedOp[]> {
    const ops = await this.queue.ops(this.name);
    return ops.filter((op) => op.kind === 'insertReturnId' && op.status !== 'dead' && (op.status === 'in-flight' || op.firstSentAt !== undefined));
  }

  private revalidate(key: string, load: () => Promise<Array<[Id, Row]>>, generation: number | undefined): void {
    if (this.revalidating.has(key)) return;
    const work = this.fetchInto(key, load, { generation, stored: true })
      .then(() => this.emit({ type: 'refreshed', cacheKey: key }))
      .catch((err) => log.debug('background refetch failed', { cacheKey: key, outcome: 'failed', error: errorInfo(err) }))
      .finally(() => this.revalidating.delete(key));
    this.revalidating.set(key, work);
  }

  // ---- write path ----

  async insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(row, this.idField, id);
    return (await this.write({ kind: 'insert', id, row: this.withoutId(row) }, opts, () => ({ ...row, [this.idField]: id }))) as Row;
  }

  /**
   * With `wait: 'queued'` the id is not known yet: the op id is returned, and
   * the row shows under it (its temporary id) until applied. Writes to the
   * temporary id queued meanwhile are sent to the master's id; an `assigned`
   * event says when.
   */
  async insertReturnId(row: Row, opts?: WriteOptions): Promise<Id> {
    checkRow(row, this.idField);
    return (await this.write({ kind: 'insertReturnId', row: this.withoutId(row) }, opts, (opId) => opId)) as Id;
  }

  async replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(row, this.idField, id);
    return (await this.write({ kind: 'replace', id, row: this.withoutId(row), base: await this.baseOf(id) }, opts, () => ({ ...row, [this.idField]: id }))) as Row;
  }

  /** With `wait: 'queued'` only the patched fields are known: they are returned, with the id. */
  async patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row> {
    checkId(id);
    checkRow(partial, this.idField, id);
    return (await this.write({ kind: 'patch', id, row: this.withoutId(partial), base: await this.baseOf(id) }, opts, () => ({ ...partial, [this.idField]: id }))) as Row;
  }

  async delete(id: Id, opts?: WriteOptions): Promise<void> {
    checkId(id);
    await this.write({ kind: 'delete', id, base: await this.baseOf(id) }, opts, () => undefined);
  }

  async deleteAll(opts?: WriteOptions): Promise<void> {
    await this.write({ kind: 'deleteAll' }, opts, () => undefined);
  }

  /**
   * The version a write to row `id` is made against: after an earlier write to
   * the row that is still queued, that write's result; otherwise the row's
   * version in a fresh cache entry (a stale one may predate a write of ours,
   * which would then conflict with itself). None: the write is sent unchecked.
   */
  private async baseOf(id: Id): Promise<OpBase | undefined> {
    if (!this.versions) return undefined;
    // Both read at once: the cache's row is wasted when an earlier write is queued, but the write waits for one read, not two.
    const [ops, row] = await Promise.all([this.queue.ops(this.name), this.freshRow(id)]);
    const earlier = ops.filter((op) => opTarget(op) === id).at(-1);
    return earlier ? { afterOp: earlier.opId } : baseFrom(row);
  }

  private async freshRow(id: Id): Promise<Row | undefined> {
    await this.stored();
    const prefix = `${this.cacheKey}/`;
    const found = (entry: CachedRows | undefined) => (entry && !entry.stale ? entry.rows.find(([rowId]) => rowId === id)?.[1] : undefined);
    // Only fresh entries can give the version, and listing them does not read every cached row (a cache can hold thousands).
    const fresh = this.cache.freshKeys?.(prefix) ?? this.cache.inspect?.(prefix).then((infos) => infos.filter((i) => !i.stale).map((i) => i.key));
    const [byId, all, keys = []] = await Promise.all([this.cache.get(this.idCacheKey(id)), this.cache.get(`${prefix}all`), fresh]);
    const direct = found(byId) ?? found(all);
    if (direct) return direct;
    for (const key of keys) {
      if (key === this.idCacheKey(id) || key === `${prefix}all`) continue;
      const row = found(await this.cache.get(key));
      if (row) return row;
    }
    return undefined;
  }

  // Queued rows never carry their id: the master's row gets it from the op, so rewriting a temporary id is one field.
  private withoutId(row: Row): Row {
    const { [this.idField]: _id, ...rest } = row;
    return rest;
  }

  private async write(body: OpBody, opts: WriteOptions | undefined, queuedReply: (opId: string) => unknown): Promise<unknown> {
    const opId = opts?.opId ?? this.env.newId();
    if (opts?.opId !== undefined && (typeof opId !== 'string' || !opId)) throw new InvalidInputError(`Invalid opId ${JSON.stringify(opId)}: use a non-empty string`);
    const idempotencyKey = opts?.idempotencyKey ?? this.env.newId();
    const { record, created } = await this.queue.enqueue({ opId, table: this.name, idempotencyKey, enqueuedAt: this.env.now(), ...body });
    if (created) {
      log.debug('enqueued', { op: body.kind, opId, id: opTarget(record as QueuedOp), cacheKey: this.cacheKey, row: 'row' in body ? body.row : undefined });
      await this.writes.tell({ type: 'queued', op: record as QueuedOp });
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
    return this.writes.flusher.flush({ skipBackoff: !opts.onlyDue });
  }

  /** Whether writes, or the change feed, wait for credentials (`auth-required`). */
  get authRequired(): boolean {
    return this.writes.flusher.authRequired || this.streamState === 'auth-required';
  }

  /** New credentials are in: writes paused for them go again. */
  credentialsChanged(): Promise<void> {
    this.stream?.reconnect?.(); // a feed waiting in auth-required connects again with them
    return this.writes.resume();
  }

  /**
   * Resolves with the master's reply once the op is applied; rejects once it is
   * dead or discarded, with an error whose `opId` names it.
   */
  waitFor(opId: string): Promise<unknown> {
    const promise = new Promise<unknown>((resolve, reject) => {
      const list = this.waiters.get(opId) ?? [];
      list.push({ resolve, reject: (err) => reject(aboutOp(err, opId)) });
      this.waiters.set(opId, list);
    });
    // Registered first, then checked, so an outcome that lands in between is not missed.
    void this.queue.record(opId).then((rec) => this.settleFromRecord(opId, rec), (err) => this.settle(opId, (w) => w.reject(err)));
    return promise;
  }

  private settleFromRecord(opId: string, rec: OpRecord | undefined): void {
    if (!rec) this.settle(opId, (w) => w.reject(new UnknownOpError(opId)));
    else if (rec.status === 'applied') this.settle(opId, (w) => w.resolve(rec.result));
    else if (rec.status === 'discarded') this.settle(opId, (w) => w.reject(discardedError(opId)));
    else if (rec.status === 'dead') this.settle(opId, (w) => w.reject(deadError(rec)));
  }

  private settle(opId: string, how: (w: Waiter) => void): void {
    const list = this.waiters.get(opId);
    this.waiters.delete(opId);
    list?.forEach(how);
  }

  /** Ops of this table still waiting for the master: queued and in-flight, in order; `blockedBy` marks those waiting behind a dead letter on their row. */
  pending(): Promise<PendingOp[]> {
    return this.writes.pending();
  }

  /** Ops of this table the master refused for good, or the queue gave up on, with the reason (W4). */
  async deadLetters(): Promise<QueuedOp[]> {
    return (await this.queue.ops(this.name)).filter((op) => op.status === 'dead');
  }

  /**
   * Send a dead letter again. It goes to the end of the queue, with the ops on
   * its row that waited behind it, so it never lands on top of a newer write;
   * the `retried` event says how many writes to its row were applied after it
   * died. Retrying an op that is already queued or applied does nothing.
   */
  async retry(opId: string): Promise<void> {
    // A conflict is retried against the master's version it met: the write wins over that version, not over one newer still.
    const dead = await this.queue.record(opId);
    const amend = dead?.status === 'dead' && dead.deadReason === 'conflict' ? { base: baseFrom(dead.lastError?.theirs) } : undefined;
    const { op, revived, overtaken } = await this.queue.revive(opId, this.env.now(), amend);
    if (op.status === 'discarded') throw aboutOp(discardedError(opId), opId);
    if (revived) await this.writes.tell({ type: 'revived', op: op as QueuedOp, overtaken });
    void this.flush({ onlyDue: true });
  }

  /**
   * End a conflict with a row of the app's choosing (a merge of both): the
   * dead letter becomes a replace of its row with `row`, checked against the
   * master's version it met, and is sent again like a retried dead letter.
   */
  async resolve(opId: string, row: Row): Promise<void> {
    const dead = await this.queue.record(opId);
    if (dead?.status !== 'dead' || dead.deadReason !== 'conflict' || !('id' in dead)) {
      throw new InvalidInputError(`Op ${opId} is not a conflict waiting for the app: only a dead letter of reason "conflict" can be resolved`);
    }
    checkRow(row, this.idField, dead.id);
    const amend = { kind: 'replace' as const, row: this.withoutId(row), base: baseFrom(dead.lastError?.theirs) };
    const { op, revived, overtaken } = await this.queue.revive(opId, this.env.now(), amend);
    if (revived) await this.writes.tell({ type: 'revived', op: op as QueuedOp, overtaken });
    void this.flush({ onlyDue: true });
  }

  /** Drop a queued or dead op without sending it; whoever waits for it is told. Discarding it again does nothing. */
  async discard(opId: string): Promise<void> {
    const record = await this.queue.discard(opId, this.env.now());
    if (record.status === 'applied') throw new VantageError('op_applied', `Op ${opId} was already applied by the master and cannot be discarded`, { opId });
    await this.writes.tell({ type: 'discarded', opId });
  }

  // What this view does with every outcome of its table's ops, whichever view queued or sent them. Waiters are
  // told last, once the events and the queue size are out, and always: a failing step never leaves them waiting.
  private async hear(outcome: QueueOutcome): Promise<void> {
    let settle: (() => void) | undefined;
    try {
      switch (outcome.type) {
        case 'queued':
          // The ack waits for this: the event goes out before it, the queue's size is counted after it.
          this.emit({ type: 'queued', op: outcome.op });
          void this.emitQueueSize().catch((err) => log.error('could not count the queue', { error: errorInfo(err) }));
          return;
        case 'applied': {
          const { op, result, rewrite } = outcome;
          settle = () => this.settle(op.opId, (w) => w.resolve(result));
          try {
            await this.invalidate('write');
          } finally {
            if (rewrite) this.emit({ type: 'assigned', opId: op.opId, temporaryId: rewrite.from, id: rewrite.to });
            this.emit({ type: 'applied', op, result });
          }
          break;
        }
        case 'applied-batch': {
          const { applied } = outcome;
          settle = () => {
            for (const { op, result } of applied) this.settle(op.opId, (w) => w.resolve(result));
          };
          try {
            await this.invalidate('write');
          } finally {
            for (const { op, result, rewrite } of applied) {
              if (rewrite) this.emit({ type: 'assigned', opId: op.opId, temporaryId: rewrite.from, id: rewrite.to });
              this.emit({ type: 'applied', op, result });
            }
          }
          break;
        }
        case 'retrying':
          return this.emit({ type: 'retrying', op: outcome.op, error: errorInfo(outcome.error), retryAt: outcome.retryAt });
        case 'dead': {
          const { op, error, reason } = outcome;
          const err = reason === 'rejected' || reason === 'conflict' ? error : new DeadLetterError(op.opId, reason, errorInfo(error).message);
          settle = () => this.settle(op.opId, (w) => w.reject(err));
          this.emit({ type: 'dead', op, error: errorInfo(err), reason });
          if (error instanceof ConflictError) this.emit({ type: 'conflict', op, theirs: error.theirs });
          break;
        }
        case 'revived':
          this.emit({ type: 'retried', op: outcome.op, overtaken: outcome.overtaken });
          break;
        case 'discarded':
          settle = () => this.settle(outcome.opId, (w) => w.reject(discardedError(outcome.opId)));
          break;
        case 'auth':
          return this.emit({ type: 'auth', state: outcome.state, ...(outcome.error === undefined ? {} : { error: errorInfo(outcome.error) }) });
      }
      await this.emitQueueSize();
    } finally {
      settle?.();
    }
  }

  /** This table's cache entries (key, row count, age, stale) without their rows, for inspectors; [] when the cache cannot list them. */
  async cacheEntries(): Promise<CacheEntryInfo[]> {
    await this.stored();
    return (await this.cache.inspect?.(`${this.cacheKey}/`)) ?? [];
  }

  // ---- event path ----

  /**
   * Take in changes made elsewhere: invalidates this table (E1), once for a
   * burst of events. Streams call it; so does a worker fed by a page's stream.
   */
  async ingest(...events: LiveEvent[]): Promise<void> {
    for (const event of events) {
      log.debug('live event', { cacheKey: this.cacheKey, id: 'id' in event ? event.id : undefined, kind: event.kind, eventId: event.eventId });
      this.emit({ type: 'live', event });
    }
    if (events.length > 0) await this.invalidate('event');
  }

  /** Mark every cached entry of this table stale (E1, W5), in constant time: the next read online refetches. A failed invalidation is retried. */
  async invalidate(reason: 'write' | 'event' = 'event'): Promise<void> {
    const prefix = `${this.cacheKey}/`;
    try {
      await this.cache.invalidatePrefix(prefix);
    } catch (err) {
      log.error('invalidation failed, retrying', { cacheKey: this.cacheKey, error: errorInfo(err) });
      if (!this.closed) this.env.setTimer(() => void this.invalidate(reason).catch(() => {}), defaultRetryPolicy.baseMs);
      throw err;
    }
    log.debug('invalidated', { cacheKey: this.cacheKey, outcome: 'invalidated', reason });
    this.emit({ type: 'invalidated', prefix, reason });
    if (!this.closed) void this.offline.refreshSoon();
  }

  // ---- events ----

  /** Hear about reads, queue changes, op outcomes, invalidations and stream state. Returns an unsubscribe function. */
  subscribe(listener: (e: LiveTableEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  private emit(event: LiveTableEvent): void {
    void this.listeners.emit(event);
  }

  private async emitQueueSize(): Promise<void> {
    if (this.listeners.size === 0) return;
    this.emit({ type: 'queue', ...(await this.queue.counts(this.name)) });
  }

  /** Stop listening to the stream and stop retry timers; the table's flusher stops when its last view closes. */
  close(): void {
    this.closed = true;
    this.unsubscribe.forEach((u) => u());
  }
}

function discardedError(opId: string): VantageError {
  return new VantageError('op_discarded', `Op ${opId} was discarded`, { opId });
}

/** The error a dead letter's waiters get: the master's refusal, or why the queue gave up. */
function deadError(op: QueuedOp): VantageError {
  const { status = 400, code = 'rejected', message = 'refused' } = op.lastError ?? {};
  if (op.deadReason === 'conflict') return new ConflictError(op.lastError?.theirs ?? null, message, op.opId);
  if (op.deadReason && op.deadReason !== 'rejected') return new DeadLetterError(op.opId, op.deadReason, message);
  return aboutOp(new MasterRejectedError(status, code, message), op.opId);
}

function conflictsOf(ops: QueuedOp[]): Array<{ id: Id; opId: string }> {
  return ops.map((op) => ({ id: opTarget(op) as Id, opId: op.opId }));
}
