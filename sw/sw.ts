/**
 * The service worker: thin wiring of the library's parts. It precaches the
 * app shell, owns the IndexedDB cache and the durable write queue, and serves
 * one LiveTable per table to every tab over the bridge.
 */
/// <reference lib="webworker" />
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { serveLiveTables } from '../src/worker.js';
import { LiveTable, MemCache, NoCache, RestTable, type Cache } from '../src/index.js';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: Array<{ url: string; revision: string | null }> };
declare const __APP_VERSION__: string;

/** The tables this app serves, by the name pages pass to `connectLiveTable`. */
const TABLES = ['products'];

precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html'), { denylist: [/^\/api\//, /^\/admin\//] }));

// `sw.js?cache=mem` or `?cache=none` picks another cache backend, for comparisons; the default keeps reads across restarts.
const cacheMode = new URL(self.location.href).searchParams.get('cache') ?? 'idb';
// `sw.js?budget=N`: the cache's byte budget (default 50 MiB), so tests can fill it.
const budget = Number(new URL(self.location.href).searchParams.get('budget')) || undefined;
const apiBase = new URL('api', self.registration.scope).pathname;
// `sw.js?auth=bearer`: the pages sign in with a bearer token (kept in their memory) instead of a cookie session.
const bearer = new URL(self.location.href).searchParams.get('auth') === 'bearer';

// Tables per user: each user's cache and queue are their own databases. The page signs in as "guest" against an
// open master, or as the user of its cookie session against one in --auth mode (cookies need no headers here), or
// with a bearer token the pages hand over (user.bearer() fails with auth-required while the worker has none).
serveLiveTables(
  (user) => {
    const cache: Cache = cacheMode === 'mem' ? new MemCache({ budgetBytes: budget }) : cacheMode === 'none' ? new NoCache() : user.cache;
    // swr: a list answers from the cache at once and refreshes in the background; pages re-read on `refreshed`.
    return Object.fromEntries(TABLES.map((name) => [name, new LiveTable(new RestTable(apiBase, name, bearer ? { headers: () => user.bearer() } : {}), name, cache, { queue: user.queue, freshness: 'swr' })]));
  },
  { version: __APP_VERSION__, cacheBudgetBytes: budget },
);

// A new version waits until a page asks it to take over (workbox-window's messageSkipWaiting); the queue it inherits is the same database.
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('message', (event) => {
  if ((event.data as { type?: string } | null)?.type === 'SKIP_WAITING') void self.skipWaiting();
});
