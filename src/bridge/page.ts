/**
 * The page side of the bridge: a typed client of a LiveTable whose every call
 * is its own message to the service worker (B1), plus table events from every
 * tab's BroadcastChannel (B2).
 */
import type { CacheEntryInfo, CachePin } from '../cache/types.js';
import type { OfflineStatus, PageRange, PrefetchEvent, PrefetchOptions, PrefetchResult } from '../prefetch.js';
import { defaultEnv, type Env } from '../env.js';
import { aboutOp, BridgeTimeoutError, InvalidInputError, NoServiceWorkerError, ProtocolMismatchError } from '../errors.js';
import type { LiveTableEvent, ReadOptions, ReadResult } from '../live-table.js';
import { Listeners } from '../listeners.js';
import { logFilter, logger } from '../log.js';
import type { PendingOp } from '../queue/table-queue.js';
import type { QueuedOp } from '../queue/types.js';
import type { Id, PageRequest, Row, WriteOptions } from '../types.js';
import { closePageDbs, openPlanDbs, readFresh } from './page-idb.js';
import { PageReads } from './page-reads.js';
import {
  EVENTS_CHANNEL,
  fromWireError,
  LIVENESS_MS,
  PROTOCOL_VERSION,
  TABLE_METHODS,
  type ChannelMessage,
  type Envelope,
  type PageReadPlan,
  type PortMessage,
  type TableMethod,
  type WorkerInfo,
} from './protocol.js';

const log = logger('vantage-live:bridge');

export interface BridgeOptions {
  /** Where to find the worker; default `navigator.serviceWorker`. */
  container?: Pick<ServiceWorkerContainer, 'ready'>;
  /** A call with no reply after this long fails with BridgeTimeoutError; default 30 s. */
  timeoutMs?: number;
  /** Silence after which the worker is presumed stopped and the call sent again; default LIVENESS_MS. */
  livenessMs?: number;
  /** Time, timers, ids and "online"; default the platform's. */
  env?: Env;
}

type EnvelopeBody = Envelope extends infer E ? (E extends unknown ? Omit<E, 'vantageLive'> : never) : never;

/**
 * Send one request to the worker and wait for its answer. Silence (a stopped
 * worker) makes it send the same request again, which restarts the worker;
 * every request is safe to repeat because writes carry their op id.
 */
export async function callWorker(body: EnvelopeBody, label: string, opts: BridgeOptions = {}): Promise<unknown> {
  const container = opts.container ?? globalThis.navigator?.serviceWorker;
  if (!container) throw new NoServiceWorkerError('this browser has no service workers, or the page is not a secure context');
  const env = opts.env ?? defaultEnv;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const deadline = env.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const worker = await beforeDeadline(container.ready.then((r) => r.active), deadline, env);
    if (worker === 'late') break;
    if (!worker) throw new NoServiceWorkerError('the registration has no active worker');
    // The worker is told how long this page will listen, so it stops working on the call's behalf after that.
    const envelope = { ...body, vantageLive: PROTOCOL_VERSION, patienceMs: Math.max(0, deadline - env.now()), log: logFilter() } as Envelope;
    const outcome = await sendOnce(worker, envelope, opts.livenessMs ?? LIVENESS_MS, deadline, env);
    if (outcome.kind === 'reply') return outcome.value;
    if (outcome.kind === 'failed') throw fromWireError(outcome.error);
    if (outcome.kind === 'mismatch') throw new ProtocolMismatchError(PROTOCOL_VERSION, outcome.workerVersion);
    if (env.now() >= deadline) break;
    log.info('worker silent, sending again', { call: label, attempt });
  }
  throw new BridgeTimeoutError(label, timeoutMs);
}

type Outcome = Extract<PortMessage, { kind: 'reply' | 'failed' | 'mismatch' }> | { kind: 'silent' };

function sendOnce(worker: Pick<ServiceWorker, 'postMessage'>, envelope: Envelope, livenessMs: number, deadline: number, env: Env): Promise<Outcome> {
  return new Promise((resolve) => {
    const { port1, port2 } = new MessageChannel();
    let cancelSilence = () => {};
    const finish = (outcome: Outcome) => {
      cancelSilence();
      cancelLate();
      port1.close();
      resolve(outcome);
    };
    const listen = () => {
      cancelSilence();
      cancelSilence = env.setTimer(() => finish({ kind: 'silent' }), livenessMs);
    };
    const cancelLate = env.setTimer(() => finish({ kind: 'silent' }), Math.max(0, deadline - env.now()));
    port1.onmessage = ({ data }: MessageEvent<PortMessage>) => {
      if (data.kind === 'ack' || data.kind === 'alive') listen();
      else finish(data);
    };
    listen();
    worker.postMessage(envelope, [port2]);
  });
}

async function beforeDeadline<T>(promise: Promise<T>, deadline: number, env: Env): Promise<T | 'late'> {
  let cancel = () => {};
  const late = new Promise<'late'>((resolve) => (cancel = env.setTimer(() => resolve('late'), Math.max(0, deadline - env.now()))));
  try {
    return await Promise.race([promise, late]);
  } finally {
    cancel();
  }
}

/** Options of `connectLiveTable`. */
export interface ConnectOptions extends BridgeOptions {
  /**
   * Answer reads in the page when it can (README, "Reads in the page"): what
   * this tab read, from memory, and fresh entries straight from the worker's
   * IndexedDB; default true, keeping at most 100 reads. `false`: every read
   * goes to the worker.
   */
  pageReads?: boolean | { maxEntries?: number };
}

/** Arguments index of the WriteOptions of each write method. */
const WRITE_OPTS_AT: Partial<Record<TableMethod, number>> = { insert: 2, insertReturnId: 1, replace: 2, patch: 2, delete: 1, deleteAll: 0 };

/** A read as the page sees it, with the app's row type. */
export type ClientReadResult<R extends Row> = Omit<ReadResult, 'rows'> & { rows: Array<[Id, R]> };

/**
 * A LiveTable in the service worker, as a page sees it: exactly what works
 * across the bridge, every method returning a promise, rows typed by the app.
 * `subscribe` hears every tab's events.
 */
export interface LiveTableClient<R extends Row = Row> {
  /** The name the worker serves the table under. */
  readonly name: string;
  read(req?: Partial<PageRequest>, opts?: ReadOptions): Promise<ClientReadResult<R>>;
  readOne(id: Id, opts?: ReadOptions): Promise<ClientReadResult<R>>;
  list(req?: PageRequest): Promise<Array<[Id, R]>>;
  get(id: Id): Promise<R | undefined>;
  insert(id: Id, row: Omit<R, 'id'>, opts?: WriteOptions): Promise<R>;
  /** With `wait: 'queued'` (the bridge's default) the temporary id: the op id, until an `assigned` event gives the master's. */
  insertReturnId(row: Omit<R, 'id'>, opts?: WriteOptions): Promise<Id>;
  replace(id: Id, row: Omit<R, 'id'>, opts?: WriteOptions): Promise<R>;
  /** With `wait: 'queued'` only the patched fields and the id. */
  patch(id: Id, partial: Partial<R>, opts?: WriteOptions): Promise<Partial<R>>;
  delete(id: Id, opts?: WriteOptions): Promise<void>;
  deleteAll(opts?: WriteOptions): Promise<void>;
  flush(opts?: { onlyDue?: boolean }): Promise<void>;
  waitFor(opId: string): Promise<unknown>;
  pending(): Promise<PendingOp[]>;
  deadLetters(): Promise<QueuedOp[]>;
  retry(opId: string): Promise<void>;
  discard(opId: string): Promise<void>;
  /** End a conflict (a dead letter of reason "conflict") with a merged row, sent against the master's version. */
  resolve(opId: string, row: Omit<R, 'id'>): Promise<void>;
  invalidate(): Promise<void>;
  cacheEntries(): Promise<CacheEntryInfo[]>;
  /**
   * Fill the worker's cache with pages ahead of use (a range, or the whole
   * table up to `maxRows`; `pin: true` keeps them offline too). Resolves when
   * it ends (done, cancelled or failed); `onProgress` hears each page in
   * order; aborting `signal` cancels it between two pages.
   */
  prefetch(opts?: PrefetchOptions, how?: { signal?: AbortSignal; onProgress?: (e: PrefetchEvent) => void }): Promise<PrefetchResult>;
  /** Start a prefetch in the worker and answer with its id at once; `prefetch` events follow. */
  startPrefetch(opts?: PrefetchOptions): Promise<{ id: string }>;
  cancelPrefetch(id: string): Promise<void>;
  /** Keep a page range (or the whole table up to `maxRows`) available offline: never evicted, refreshed in the background once invalidated. */
  pin(range: PageRange): Promise<CachePin>;
  unpin(id: string): Promise<void>;
  /** Cache size and budget, pinned ranges and their freshness, the last background refresh. */
  offlineStatus(): Promise<OfflineStatus>;
  subscribe(listener: (e: LiveTableEvent) => void): () => void;
}

/**
 * Connect to the LiveTable the service worker serves under `name`.
 *
 * Writes get their op id here, in the page, so a call repeated after a worker
 * restart is queued once (W3), and they default to `wait: 'queued'`: they
 * resolve once the op is durable in the worker, online or not, and the
 * outcome reaches every tab as an event (`applied`, `dead`). With `wait:
 * 'applied'` a write waits for the master; any error that follows a queued
 * write names its op (`err.opId`), to follow with `waitFor`, `retry` or
 * `discard`, and a write sent again with the same `opId` is queued once.
 */
export function connectLiveTable<R extends Row = Row>(name: string, opts: ConnectOptions = {}): LiveTableClient<R> {
  const env = opts.env ?? defaultEnv;
  const call = (method: TableMethod, args: unknown[]) => callWorker({ kind: 'call', table: name, method, args }, `${name}.${method}`, opts);
  const reads = opts.pageReads === false ? undefined : pageReadsOf(name, opts);
  const read = async (method: 'read' | 'readOne', args: unknown[]): Promise<ReadResult> => {
    if (!reads) return (await call(method, args)) as ReadResult;
    const key = reads.keyOf(method, args[0]);
    const answer = key === undefined ? undefined : (reads.kept(key) ?? (await reads.fromIdb(key)));
    if (answer) return answer;
    const mark = reads.mark;
    const result = (await call(method, args)) as ReadResult;
    reads.keep(result, mark);
    return result;
  };
  // A call that may change what reads show forgets them when sent and when answered; other tabs hear its events.
  const changing = async (work: () => Promise<unknown>) => {
    reads?.changed();
    try {
      return await work();
    } finally {
      reads?.changed();
    }
  };
  const write = async (method: TableMethod, at: number, args: unknown[]) => {
    const given = (args[at] ?? {}) as WriteOptions;
    const opId = given.opId ?? env.newId();
    const sent = [...args];
    sent[at] = { ...given, opId, wait: given.wait ?? 'queued' };
    try {
      return await call(method, sent);
    } catch (err) {
      if (err instanceof InvalidInputError) throw err; // refused before anything was queued
      throw err instanceof BridgeTimeoutError ? new BridgeTimeoutError(err.method, err.ms, opId) : aboutOp(err, opId);
    }
  };
  const client: Record<string, unknown> = { name, subscribe: (listener: (e: LiveTableEvent) => void) => subscribeTable(name, listener) };
  for (const method of TABLE_METHODS) {
    const at = WRITE_OPTS_AT[method];
    if (at !== undefined) client[method] = (...args: unknown[]) => changing(() => write(method, at, args));
    else if (CHANGING.has(method)) client[method] = (...args: unknown[]) => changing(() => call(method, args));
    else client[method] = (...args: unknown[]) => call(method, args);
  }
  if (reads) {
    client.read = (...args: unknown[]) => read('read', args);
    client.readOne = (...args: unknown[]) => read('readOne', args);
    // As the worker's list and get: the rows of read and readOne.
    client.list = async (req?: PageRequest) => (await read('read', [req])).rows;
    client.get = async (id: Id) => (await read('readOne', [id])).rows[0]?.[1];
  }
  client.prefetch = (opts: PrefetchOptions = {}, how: { signal?: AbortSignal; onProgress?: (e: PrefetchEvent) => void } = {}) =>
    changing(() => prefetchThrough(call, (listener) => subscribeTable(name, listener), { ...opts, id: opts.id ?? env.newId() }, how));
  return client as unknown as LiveTableClient<R>;
}

/** Calls besides writes that change what reads show: queue changes, invalidations, refetches. */
const CHANGING: ReadonlySet<TableMethod> = new Set(['flush', 'retry', 'discard', 'resolve', 'invalidate', 'startPrefetch']);

// One PageReads per worker container and table in a tab, however many clients connect to it.
const pageReads = new WeakMap<object, Map<string, PageReads>>();

function pageReadsOf(name: string, opts: ConnectOptions): PageReads | undefined {
  const container = opts.container ?? globalThis.navigator?.serviceWorker;
  if (!container || typeof indexedDB === 'undefined') return undefined;
  let tables = pageReads.get(container);
  if (!tables) pageReads.set(container, (tables = new Map()));
  const known = tables.get(name);
  if (known) return known;
  const env = opts.env ?? defaultEnv;
  const reads = new PageReads({
    plan: async () => (await callWorker({ kind: 'read-plan', table: name }, `${name}.readPlan`, opts)) as PageReadPlan | null,
    readFresh: (plan, key) => readFresh(plan, key, env.now()),
    prepare: (plan) => void openPlanDbs(plan, env.now()),
    now: () => env.now(),
    maxEntries: typeof opts.pageReads === 'object' ? opts.pageReads.maxEntries : undefined,
  });
  tables.set(name, reads);
  reads.warm();
  hearChannel((data) => {
    if ('session' in data) forgetReads(container);
    else if (data.table === name) reads.hear(data.event);
  });
  // Another worker may have another cache; a page back from the back/forward cache or frozen missed events.
  const events = container as Partial<Pick<EventTarget, 'addEventListener'>>;
  events.addEventListener?.('controllerchange', () => forgetReads(container));
  if (typeof globalThis.addEventListener === 'function') {
    globalThis.addEventListener('pageshow', (e) => (e as PageTransitionEvent).persisted && forgetReads(container));
    globalThis.addEventListener('resume', () => forgetReads(container));
  }
  return reads;
}

/** Forget every read this tab kept of the worker's tables, and their plans: another user, another worker. */
function forgetReads(container: object | undefined): void {
  if (container) pageReads.get(container)?.forEach((reads) => reads.reset());
  closePageDbs();
}

// Subscribed before the start, so no event of this prefetch is missed; its last event settles it.
function prefetchThrough(
  call: (method: TableMethod, args: unknown[]) => Promise<unknown>,
  subscribe: (listener: (e: LiveTableEvent) => void) => () => void,
  opts: PrefetchOptions & { id: string },
  how: { signal?: AbortSignal; onProgress?: (e: PrefetchEvent) => void },
): Promise<PrefetchResult> {
  return new Promise((resolve, reject) => {
    const cancel = () => void call('cancelPrefetch', [opts.id]).catch((err) => log.warn('prefetch not cancelled', { error: String(err) }));
    // A worker stopped mid-prefetch forgets it: after a quiet spell the page starts it again (a no-op while it runs).
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const watch = () => {
      clearTimeout(quiet);
      quiet = setTimeout(() => void start(), NUDGE_AFTER_MS);
    };
    const settle = () => {
      clearTimeout(quiet);
      stop();
      how.signal?.removeEventListener('abort', cancel);
    };
    const stop = subscribe((e) => {
      if (e.type !== 'prefetch' || e.id !== opts.id) return;
      const { type: _type, ...event } = e;
      how.onProgress?.(event);
      if (event.state === 'running') return watch();
      settle();
      resolve(event as PrefetchResult);
    });
    how.signal?.addEventListener('abort', cancel);
    const start = () =>
      call('startPrefetch', [opts]).then(
        () => {
          watch();
          if (how.signal?.aborted) cancel();
        },
        (err) => {
          settle();
          reject(err);
        },
      );
    void start();
  });
}

/** Hear one table's events, from whichever tab or worker caused them. Survives worker restarts: the channel is not tied to a worker. */
export function subscribeTable(table: string, listener: (e: LiveTableEvent) => void): () => void {
  return hearChannel((data) => {
    if ('event' in data && data.table === table) listener(data.event);
  });
}

// One channel per tab for what the worker broadcasts, however many listen in it: each channel object would receive,
// and copy, every message on its own (a React app has one listener per hook), and its listener would wait behind the others'.
let channel: { close(): void } | undefined;
const channelListeners = new Listeners<ChannelMessage>('channel message');

/** Hear every message of the events channel; returns the function that stops. */
function hearChannel(listener: (data: ChannelMessage) => void): () => void {
  if (!channel) {
    const opened = new BroadcastChannel(EVENTS_CHANNEL);
    opened.onmessage = ({ data }: MessageEvent<ChannelMessage>) => void channelListeners.emit(data);
    (opened as { unref?: () => void }).unref?.(); // Node: a test's process may end with the channel open
    channel = opened;
  }
  const remove = channelListeners.add(listener);
  return () => {
    remove();
    if (channelListeners.size > 0) return;
    channel?.close();
    channel = undefined;
  };
}

/** How long pending writes may go without any sign of progress before a page nudges the worker. */
export const NUDGE_AFTER_MS = 10_000;

/**
 * Keep the worker's flushes going, from the page. Service workers never get an
 * `online` event, and are stopped when idle or after minutes inside one event,
 * which ends a long flush with nothing to resume it. So: forward the page's
 * `online` (the worker then skips its current backoff), and while writes are
 * pending with no progress for NUDGE_AFTER_MS, nudge the worker, which
 * restarts if it was stopped and sends what is due. Returns a function that stops.
 */
export function keepFlushing(opts: BridgeOptions = {}): () => void {
  const env = opts.env ?? defaultEnv;
  const send = (kind: 'online' | 'nudge') =>
    void callWorker({ kind }, kind, opts).catch((err) => log.warn(`${kind} not sent to the worker`, { error: String(err) }));
  const pending = new Map<string, number>();
  let progressAt = env.now();
  // What waits is asked at the first check, not at once: a page that starts has reads to make first.
  let asked = false;
  const stopHearing = hearChannel((data) => {
    if (!('event' in data)) return;
    const { type } = data.event;
    if (data.event.type === 'queue') pending.set(data.table, data.event.pending);
    if (type === 'queue' || type === 'applied' || type === 'retrying' || type === 'dead') progressAt = env.now();
  });
  let cancel = () => {};
  const check = () => {
    cancel = env.setTimer(check, NUDGE_AFTER_MS / 2);
    if (!asked) {
      asked = true;
      void workerInfo(opts).then((info) => info.tables.forEach((t) => pending.has(t.name) || pending.set(t.name, t.pending)), () => {});
    }
    const waiting = [...pending.values()].some((n) => n > 0);
    if (!waiting || !env.isOnline() || env.now() - progressAt < NUDGE_AFTER_MS) return;
    progressAt = env.now();
    send('nudge');
  };
  cancel = env.setTimer(check, NUDGE_AFTER_MS / 2);
  const onOnline = () => send('online');
  addEventListener('online', onOnline);
  return () => {
    cancel();
    stopHearing();
    removeEventListener('online', onOnline);
  };
}

/** The worker's build version and each table's wiring and queue. */
export function workerInfo(opts: BridgeOptions = {}): Promise<WorkerInfo> {
  return callWorker({ kind: 'info' }, 'info', opts) as Promise<WorkerInfo>;
}

/** Ask the browser not to evict this origin's storage under pressure; resolves with its answer. */
export async function requestPersistence(): Promise<boolean> {
  const storage = globalThis.navigator?.storage;
  if (!storage?.persist) return false;
  return (await storage.persisted()) || storage.persist();
}

/**
 * Tell the worker who is signed in: their own cache and queue are used from
 * now on, and their queued writes go out. `token`: the bearer token of an app
 * that uses one (cookie sessions need none). A user already signed in is
 * signed out first, their pending writes kept for their next sign-in.
 */
export async function signIn(user: string, opts: BridgeOptions & { token?: string } = {}): Promise<void> {
  await aboutSession(opts, () => callWorker({ kind: 'sign-in', user, token: opts.token }, 'signIn', opts));
}

/**
 * Sign out, saying what happens to pending writes: `flush` sends them first
 * (and fails with `pending_writes`, still signed in, if some cannot go now),
 * `keep` seals them until this user signs in again, `discard` drops them.
 * `wipe` also deletes the user's cache, queue and resume points.
 */
export async function signOut(opts: BridgeOptions & { pending: 'flush' | 'keep' | 'discard'; wipe?: boolean }): Promise<void> {
  await aboutSession(opts, () => callWorker({ kind: 'sign-out', pending: opts.pending, wipe: opts.wipe }, 'signOut', opts));
}

// This tab forgets the reads it kept when it asks to change who is signed in, and again when the worker answered; other tabs hear the worker's session broadcast.
async function aboutSession(opts: BridgeOptions, work: () => Promise<unknown>): Promise<void> {
  const container = opts.container ?? globalThis.navigator?.serviceWorker;
  forgetReads(container);
  try {
    await work();
  } finally {
    forgetReads(container);
  }
}

/** New credentials for the signed-in user (a fresh bearer token; none after a cookie session was renewed): writes paused for them go again. */
export async function setCredentials(token: string | undefined, opts: BridgeOptions = {}): Promise<void> {
  await callWorker({ kind: 'credentials', token }, 'setCredentials', opts);
}

/**
 * Answer the worker whenever its writes wait for credentials (after a
 * restart it has no token; after a 401 it needs a new one): `getToken` is
 * asked, and what it gives is handed over. The worker ignores a token the
 * master just refused, so an expired one does not loop. Returns a function that stops.
 */
export function provideCredentials(getToken: () => string | undefined | Promise<string | undefined>, opts: BridgeOptions = {}): () => void {
  const hand = () =>
    void Promise.resolve(getToken())
      .then((token) => (token === undefined ? undefined : setCredentials(token, opts)))
      .catch((err) => log.warn('credentials not handed to the worker', { error: String(err) }));
  const stop = hearChannel((data) => {
    if ('event' in data && data.event.type === 'auth' && data.event.state === 'required') hand();
  });
  // A worker that paused before this page started listening is answered too.
  void workerInfo(opts).then((info) => info.tables.some((t) => t.authRequired) && hand(), () => {});
  return stop;
}
