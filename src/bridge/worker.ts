/**
 * The worker side of the bridge: serves LiveTables to pages, one message per
 * call, each handled under `waitUntil` so the worker is not stopped mid-call,
 * and broadcasts every table's events to every tab.
 */
import type { DBSchema } from 'idb';
import { VantageError } from '../errors.js';
import { IdbConnection } from '../idb-connection.js';
import type { LiveTable } from '../live-table.js';
import { configureLogging, logFilter, logger } from '../log.js';
import type { StreamState } from '../stream/types.js';
import { Sessions, type TablesFor } from './session.js';
import { ALIVE_EVERY_MS, EVENTS_CHANNEL, isEnvelope, isTagged, PROTOCOL_VERSION, toWireError, type Broadcast, type Envelope, type PortMessage, type WorkerInfo } from './protocol.js';

const log = logger('vantage-live:bridge');

/** How long a call from a page that names no patience keeps the worker awake, in ms. */
const MAX_PATIENCE_MS = 5 * 60_000;

/** The Background Sync tag registered when a flush must be retried later. */
export const SYNC_TAG = 'vantage-live:flush';

/** The Periodic Background Sync tag under which pinned pages are refreshed, where the browser has it. */
export const PERIODIC_SYNC_TAG = 'vantage-live:pinned';

/** How often pinned pages are refreshed by Periodic Background Sync, at least (the browser decides when). */
const PERIODIC_SYNC_MS = 12 * 60 * 60_000;

/** The parts of a service worker's global scope the bridge uses; injectable for tests. */
export interface WorkerScope {
  addEventListener(type: 'message', listener: (event: ExtendableMessageEvent) => void): void;
  addEventListener(type: 'sync' | 'activate' | 'periodicsync', listener: (event: ExtendableEvent & { tag?: string }) => void): void;
  registration?: { sync?: { register(tag: string): Promise<void> }; periodicSync?: { register(tag: string, opts: { minInterval: number }): Promise<void> } };
}

export interface ServeOptions {
  /** This build's version, reported by `info`. */
  version?: string;
  /** Default `self`. */
  scope?: WorkerScope;
  /** Where the last change-feed event id of each table is kept; default the IndexedDB database "vantage-live-meta". */
  metaDbName?: string;
  /** Byte budget of each user's cache (tables per user); default 50 MiB. */
  cacheBudgetBytes?: number;
}

interface MetaSchema extends DBSchema {
  /** The last change-feed event id each table took in, by table (or `user/table` for tables per user). */
  lastEventId: { key: string; value: string };
  /** `user`: who is signed in, so a restarted worker serves the same user. */
  session: { key: string; value: string };
}

/** What `serveLiveTables` returns: a flush of every table, for the worker's other triggers. */
export interface LiveTableServer {
  flushAll(opts?: { onlyDue?: boolean }): Promise<void>;
}

/**
 * Serve `tables` (by the name pages pass to `connectLiveTable`) to every page
 * of the origin. Flushes run at worker start, after every call, on the `sync`
 * event, and when a page forwards `online`; each inside `waitUntil`.
 *
 * Pass a function instead to serve tables per user: it is called with the
 * user's own cache and queue when a page calls `signIn(user)`, and until then,
 * and after `signOut`, no table exists (calls fail with `signed_out`). Who is
 * signed in survives a worker restart; a bearer token does not, and the
 * worker waits for a page to hand it over again (`auth-required`).
 */
export function serveLiveTables(tables: Record<string, LiveTable> | TablesFor, opts: ServeOptions = {}): LiveTableServer {
  const scope = opts.scope ?? (globalThis as unknown as WorkerScope);
  const channel = new BroadcastChannel(EVENTS_CHANNEL);
  const meta = new IdbConnection<MetaSchema>(opts.metaDbName ?? 'vantage-live-meta', 2, (db, oldVersion) => {
    if (oldVersion < 1) db.createObjectStore('lastEventId');
    if (oldVersion < 2) db.createObjectStore('session');
  });
  const streamStates = new Map<string, StreamState>();

  // Inside a sync event a failed flush rejects instead, so the browser retries it with its own backoff;
  // registering the tag again from there would fire the event again at once, in a loop.
  let syncing = false;
  const wire = (served: Record<string, LiveTable>) => {
    for (const [name, table] of Object.entries(served)) {
      table.subscribe((event) => {
        channel.postMessage({ table: name, event } satisfies Broadcast);
        if (event.type === 'retrying' && !syncing) scope.registration?.sync?.register(SYNC_TAG).catch(() => {});
        if (event.type === 'auth' && event.state === 'required') sessions?.refused();
      });
    }
  };
  const sessions = typeof tables === 'function' ? new Sessions(tables, wire, opts.cacheBudgetBytes) : undefined;
  if (!sessions) wire(tables as Record<string, LiveTable>);
  // Serve whoever was signed in before the worker was stopped.
  const restored = sessions
    ? meta
        .get()
        .then((db) => db.get('session', 'user'))
        .then((user) => (user === undefined ? undefined : sessions.signIn(user)))
        .catch((err) => log.error('could not restore the signed-in user', { error: String(err) }))
    : Promise.resolve();
  const served = async (): Promise<Record<string, LiveTable>> => {
    await restored;
    return sessions ? (sessions.current() ?? {}) : (tables as Record<string, LiveTable>);
  };
  const must = async (name: string): Promise<LiveTable> => {
    const all = await served();
    // Own properties only: a table named "__proto__" or "constructor" is no table.
    if (Object.hasOwn(all, name)) return all[name]!;
    if (sessions && !sessions.signedIn) throw new VantageError('signed_out', 'No one is signed in: call signIn(user) from a page first');
    throw new VantageError('unknown_table', `This service worker serves no table "${name}"; it serves: ${Object.keys(all).join(', ')}`);
  };
  const resumeKey = (table: string) => (sessions?.signedIn === undefined ? table : `${sessions.signedIn}/${table}`);
  const flushAll = async (opts: { onlyDue?: boolean } = {}) => void (await Promise.all(Object.values(await served()).map((t) => t.flush(opts))));
  const idle = async () => void (await Promise.all(Object.values(await served()).map((t) => t.idle())));
  const refreshPinned = async () => void (await Promise.all(Object.values(await served()).map((t) => t.refreshPinned())));
  // Where Periodic Background Sync exists (an installed PWA in Chromium) pinned pages are also refreshed on its schedule; elsewhere it is absent or refuses, and nothing else changes.
  const registerPeriodic = () => void scope.registration?.periodicSync?.register(PERIODIC_SYNC_TAG, { minInterval: PERIODIC_SYNC_MS }).catch(() => {});

  const syncFlush = async () => {
    syncing = true;
    try {
      await flushAll();
      const waiting = await Promise.all(Object.values(await served()).map((t) => t.queue.counts(t.name)));
      if (waiting.some((c) => c.pending > 0)) throw new VantageError('sync_pending', 'Writes are still waiting for the master: let the browser retry this sync later', { transient: true });
    } finally {
      syncing = false;
    }
  };

  const needSessions = () => {
    if (!sessions) throw new VantageError('not_allowed', 'This service worker serves the same tables to everyone: pass serveLiveTables a function of the user to have sign-in');
    return sessions;
  };

  // `defer` hands work to the event's waitUntil without making the page wait for it: a long flush must not time out the call.
  const handle = async (envelope: Envelope, defer: (work: Promise<void>) => void): Promise<unknown> => {
    switch (envelope.kind) {
      case 'call': {
        const table = await must(envelope.table);
        if (envelope.method === 'pin' || envelope.method === 'startPrefetch') registerPeriodic();
        return (table[envelope.method] as (...args: unknown[]) => unknown).apply(table, envelope.args);
      }
      case 'online':
        return defer(Promise.all([flushAll(), refreshPinned()]).then(() => {})); // the network is back: do not wait out backoffs
      case 'nudge':
        return undefined; // the flush of what is due after every call is the whole of a nudge
      case 'stream-resume':
        await must(envelope.table);
        return (await meta.get()).get('lastEventId', resumeKey(envelope.table));
      case 'live-event': {
        await (await must(envelope.table)).ingest(envelope.event);
        // Stored after the invalidation: a worker stopped in between replays the event, never skips it.
        if (envelope.event.eventId !== undefined) await (await meta.get()).put('lastEventId', envelope.event.eventId, resumeKey(envelope.table));
        return undefined;
      }
      case 'stream-state':
        streamStates.set(envelope.table, envelope.state);
        channel.postMessage({ table: envelope.table, event: { type: 'stream', state: envelope.state } } satisfies Broadcast);
        return undefined;
      case 'info':
        return info();
      case 'sign-in': {
        await restored;
        await needSessions().signIn(envelope.user, envelope.token);
        await (await meta.get()).put('session', envelope.user, 'user');
        return undefined;
      }
      case 'sign-out': {
        await restored;
        const user = needSessions().signedIn;
        await needSessions().signOut({ pending: envelope.pending, wipe: envelope.wipe });
        const db = await meta.get();
        await db.delete('session', 'user');
        if (envelope.wipe && user !== undefined) await db.delete('lastEventId', IDBKeyRange.bound(`${user}/`, `${user}/\uffff`));
        return undefined;
      }
      case 'credentials':
        await restored;
        return needSessions().setCredentials(envelope.token);
    }
  };

  const info = async (): Promise<WorkerInfo> => ({
    protocol: PROTOCOL_VERSION,
    version: opts.version ?? 'dev',
    user: sessions?.signedIn,
    tables: await Promise.all(
      Object.entries(await served()).map(async ([name, t]) => ({
        name,
        cacheKey: t.cacheKey,
        masterIpp: t.masterIpp,
        cache: t.cache.kind ?? t.cache.constructor.name,
        queue: t.queue.kind ?? t.queue.constructor.name,
        ...(await t.queue.counts(t.name)),
        lastEventId: await (await meta.get()).get('lastEventId', resumeKey(name)),
        stream: streamStates.get(name) ?? 'closed',
        authRequired: t.authRequired,
        delivery: t.master.delivery?.summary,
        offline: await t.offlineStatus(),
      })),
    ),
    storage: await storageInfo(),
  });

  scope.addEventListener('message', (event) => {
    const data: unknown = event.data;
    if (!isTagged(data)) return; // not ours: another library's message
    const port = event.ports[0];
    if (!port) return;
    const reply = (message: PortMessage) => port.postMessage(message);
    if (data.vantageLive !== PROTOCOL_VERSION) return reply({ kind: 'mismatch', workerVersion: PROTOCOL_VERSION });
    if (!isEnvelope(data)) {
      return reply({ kind: 'failed', error: toWireError(new VantageError('not_allowed', 'This message is not part of the vantage-live protocol: refused')) });
    }
    if (data.log !== undefined && data.log !== logFilter()) configureLogging({ filter: data.log });
    reply({ kind: 'ack' });
    const alive = setInterval(() => reply({ kind: 'alive' }), ALIVE_EVERY_MS);
    const deferred: Array<Promise<void>> = [];
    const work = handle(data, (p) => void deferred.push(p)).then(
      (value) => reply({ kind: 'reply', value }),
      (err) => reply({ kind: 'failed', error: toWireError(err) }),
    );
    // Once the page has given up on the call, the worker stops saying alive and stops staying awake for it;
    // the work itself goes on (a write stays queued), and its answer, if it comes, goes nowhere.
    let stopWaiting = () => {};
    const given = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, data.patienceMs ?? MAX_PATIENCE_MS);
      stopWaiting = () => clearTimeout(timer);
    });
    const afterwards = Promise.race([work, given])
      .finally(() => {
        stopWaiting();
        clearInterval(alive);
        port.close();
      })
      .then(() => Promise.all([flushAll({ onlyDue: true }), idle()]));
    event.waitUntil(Promise.all([afterwards, ...deferred]).catch((err) => log.error('flush after a call failed', { error: String(err) })));
  });
  scope.addEventListener('sync', (event) => {
    if (event.tag === SYNC_TAG) event.waitUntil(syncFlush());
  });
  scope.addEventListener('periodicsync', (event) => {
    if (event.tag === PERIODIC_SYNC_TAG) event.waitUntil(refreshPinned());
  });
  // An update must not wait for the backlog: activation finishes at once and the flush runs after it. If the
  // idle worker is stopped before it is done, pages' calls and nudges (keepFlushing) start it again.
  scope.addEventListener('activate', () => void flushAll().catch((err) => log.error('flush after activation failed', { error: String(err) })));
  return { flushAll };
}

/** The origin's storage: `navigator.storage.estimate()` and `persisted()`, each where the worker has it. */
async function storageInfo(): Promise<NonNullable<WorkerInfo['storage']>> {
  const storage = (globalThis as { navigator?: { storage?: Partial<StorageManager> } }).navigator?.storage;
  const [estimate, persisted] = await Promise.all([storage?.estimate?.().catch(() => undefined), storage?.persisted?.().catch(() => undefined)]);
  return { usage: estimate?.usage, quota: estimate?.quota, persisted };
}
