/**
 * The alternative the bench compares a vantage-live hit with: a plain Workbox
 * service worker that answers `/api/products?page=N&ipp=M` CacheFirst from
 * Cache Storage. Built by bench/lib/site.ts into `/bench/wb/sw.js`, scope
 * `/bench/wb/`, so it never competes with the demo's worker at `/`.
 */
/// <reference lib="webworker" />
import { registerRoute } from 'workbox-routing';
import { CacheFirst } from 'workbox-strategies';

declare const self: ServiceWorkerGlobalScope;

const WORKBOX_CACHE = 'bench-workbox-api';

registerRoute(
  ({ url }) => url.pathname === '/api/products' && url.searchParams.has('page'),
  new CacheFirst({ cacheName: WORKBOX_CACHE }),
);

self.addEventListener('install', () => void self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
