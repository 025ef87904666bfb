/**
 * A page's read-only view of the worker's databases: a cache entry with its
 * table's generation, the queue's running counts of one table, who is signed
 * in. The worker owns these databases: the page never creates, upgrades or
 * writes them (so the worker stays the only writer of the cache's budget
 * bookkeeping), reads one only at the version it knows, and lets go of its
 * connection as soon as the worker upgrades or deletes it.
 */
import { CACHE_SCHEMA_VERSION } from '../cache/idb-cache.js';
import { isStale, tableOf, type CachedRows } from '../cache/types.js';
import { QUEUE_SCHEMA_VERSION } from '../queue/idb-queue.js';
import { META_SCHEMA_VERSION, type PageReadPlan } from './protocol.js';

/** How long a database the page could not open is left alone before it tries again, in ms. */
const REOPEN_AFTER_MS = 1_000;

type Connection = { db?: IDBDatabase; failedAt?: number; settled: Promise<void> };
const connections = new Map<string, Connection>();

/**
 * The open connection to `name`, or undefined while there is none: then one is
 * opened in the background, for a later read. Opened without a version, so the
 * worker's connections are never asked to upgrade; a database that does not
 * exist is not created (its upgrade is aborted), and one at another version
 * than `version` is closed again.
 */
function connection(name: string, version: number, now: number): IDBDatabase | undefined {
  const known = connections.get(name);
  if (known?.db) return known.db;
  if (known && (known.failedAt === undefined || now - known.failedAt < REOPEN_AFTER_MS)) return undefined; // opening, or failed just now
  let settle = () => {};
  const state: Connection = { settled: new Promise((resolve) => (settle = resolve)) };
  connections.set(name, state);
  const failed = () => {
    if (connections.get(name) === state) state.failedAt = now;
    settle();
  };
  let request: IDBOpenDBRequest;
  try {
    request = indexedDB.open(name);
  } catch {
    failed();
    return undefined;
  }
  request.onupgradeneeded = () => request.transaction?.abort();
  request.onerror = (event) => {
    event.preventDefault();
    failed();
  };
  request.onsuccess = () => {
    const db = request.result;
    if (db.version !== version || connections.get(name) !== state) {
      db.close();
      return failed();
    }
    const letGo = () => {
      db.close();
      if (connections.get(name)?.db === db) connections.delete(name);
    };
    db.onversionchange = letGo;
    db.onclose = letGo;
    state.db = db;
    settle();
  };
  return undefined;
}

/** Open the plan's databases in the background, so the next read finds them open; resolves once each is open or failed to. */
export async function openPlanDbs(plan: PageReadPlan, now: number): Promise<void> {
  const names: Array<[string, number]> = [
    [plan.cacheDb, CACHE_SCHEMA_VERSION],
    [plan.queueDb, QUEUE_SCHEMA_VERSION],
    ...(plan.session ? [[plan.session.metaDb, META_SCHEMA_VERSION] as [string, number]] : []),
  ];
  for (const [name, version] of names) connection(name, version, now);
  await Promise.all(names.map(([name]) => connections.get(name)?.settled));
}

/** Let go of every connection the page holds (another user signed in, another worker took over). */
export function closePageDbs(): void {
  for (const { db } of connections.values()) db?.close();
  connections.clear();
}

/**
 * The entry under `key` if the worker would answer it as a hit with nothing
 * laid over it: the entry is there and not invalidated, no write of the table
 * is pending or dead (the overlay and conflicts are the worker's to compute),
 * and the plan's user is still the one signed in. Undefined for anything else,
 * including a database not open yet. `maxAgeMs` is the caller's to check.
 */
export async function readFresh(plan: PageReadPlan, key: string, now: number): Promise<CachedRows | undefined> {
  const cache = connection(plan.cacheDb, CACHE_SCHEMA_VERSION, now);
  const queue = connection(plan.queueDb, QUEUE_SCHEMA_VERSION, now);
  const meta = plan.session && connection(plan.session.metaDb, META_SCHEMA_VERSION, now);
  if (!cache || !queue || (plan.session && !meta)) return undefined;
  try {
    const entries = cache.transaction(['entries', 'generations']);
    // The queue keeps running counts per table (IdbQueue's `meta` store): two small reads instead of its ops.
    const counts = queue.transaction('meta').objectStore('meta');
    const [entry, current, pending, dead, user] = await Promise.all([
      get<CachedRows>(entries.objectStore('entries').get(key)),
      get<number>(entries.objectStore('generations').get(tableOf(key))),
      get<number>(counts.get(`pending/${plan.queueTable}`)),
      get<number>(counts.get(`dead/${plan.queueTable}`)),
      meta ? get<string>(meta.transaction('session').objectStore('session').get('user')) : undefined,
    ]);
    if (!entry || isStale(entry, current ?? 0) || (pending ?? 0) > 0 || (dead ?? 0) > 0) return undefined;
    if (plan.session && user !== plan.session.user) return undefined;
    return { rows: entry.rows, fetchedAt: entry.fetchedAt };
  } catch {
    return undefined; // a store missing, a connection closing: the worker answers
  }
}

function get<T>(request: IDBRequest): Promise<T | undefined> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result as T | undefined);
    request.onerror = () => reject(request.error);
  });
}
