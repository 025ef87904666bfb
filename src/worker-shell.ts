/**
 * What a service worker needs for an offline reload of the app: import from
 * 'vantage-live/worker-shell'. Precache the app shell (the list the build
 * injects), route every navigation to the precached index.html (except the
 * API's paths, which must reach the network), and take control of open pages
 * as soon as the worker is active. Built on workbox-precaching and
 * workbox-routing, which are peer dependencies.
 *
 * In the worker's entry, call `serveAppShell` with the global's
 * `__WB_MANIFEST`, read through `self` (docs/package-README.md shows it): the
 * `vantageLiveWorker` Vite plugin, or workbox-build's `injectManifest`, finds
 * that text in the built worker and puts the list in its place. This file
 * never spells it out, so the built worker holds it exactly once.
 */
/// <reference lib="webworker" />
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute, type PrecacheEntry } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';

/** The precache list a build injects: urls with their revisions. */
export type PrecacheEntries = Array<PrecacheEntry | string>;

export interface AppShellOptions {
  /** The page every navigation gets, relative to the worker's scope; default 'index.html'. */
  indexHtml?: string;
  /** Navigations to these paths go to the network, not to the shell; default `/api/` and `/admin/` (and `/auth/`). */
  denylist?: RegExp[];
  /** Take control of open pages on activate, so the first visit is served by the worker without a reload; default true. */
  claimClients?: boolean;
  /**
   * Switch to a new version when a page asks with `{ type: 'SKIP_WAITING' }`
   * (workbox-window's `messageSkipWaiting`); default true. Otherwise a new
   * version waits until every tab of the old one is closed.
   */
  skipWaitingOnMessage?: boolean;
  /** Default `self`. */
  scope?: ServiceWorkerGlobalScope;
}

export const DEFAULT_DENYLIST = [/^\/api\//, /^\/admin\//, /^\/auth\//];

/**
 * Precache `manifest` and serve the app shell from it, offline too.
 *
 * @param manifest the build's precache list: the global's `__WB_MANIFEST`, read through `self`
 */
export function serveAppShell(manifest: PrecacheEntries, opts: AppShellOptions = {}): void {
  const scope = opts.scope ?? (globalThis as unknown as ServiceWorkerGlobalScope);
  const indexHtml = opts.indexHtml ?? 'index.html';
  precacheAndRoute(manifest);
  cleanupOutdatedCaches();
  // A dev server's worker precaches nothing; navigations then go to the network as usual.
  if (manifest.some((entry) => (typeof entry === 'string' ? entry : entry.url) === indexHtml)) {
    registerRoute(new NavigationRoute(createHandlerBoundToURL(indexHtml), { denylist: opts.denylist ?? DEFAULT_DENYLIST }));
  }
  if (opts.claimClients ?? true) scope.addEventListener('activate', (event) => event.waitUntil(scope.clients.claim()));
  if (opts.skipWaitingOnMessage ?? true) {
    scope.addEventListener('message', (event) => {
      if ((event.data as { type?: unknown } | null)?.type === 'SKIP_WAITING') void scope.skipWaiting();
    });
  }
}
