/**
 * The page's whole wiring of vantage-live: register the service worker,
 * connect to its products table, forward `online`, compete to host the
 * change feed, and ask for persistent storage.
 */
import { Workbox } from 'workbox-window';
import { connectLiveTable, keepFlushing, hostLiveStream, requestPersistence, type LiveTableClient } from '../../src/page.js';
import { FetchSseLiveStream, SseLiveStream } from '../../src/index.js';
import { bearerToken } from './session.js';

export interface Connection {
  live: LiveTableClient;
  workbox: Workbox;
  /** Resolves with the browser's answer to `navigator.storage.persist()`. */
  persisted: Promise<boolean>;
  /** Set when a new version of the worker is installed and waiting; call to switch to it (the page reloads). */
  onUpdateWaiting(listener: (activate: () => void) => void): void;
}

let swapping = false;

/** Whether the page has asked a new version to take over: until it does, the page leaves the old worker alone. */
export function isSwapping(): boolean {
  return swapping;
}

/** `signedIn` runs once the worker is ready and before anything talks to its tables (they exist only for a signed-in user). */
export async function connect(signedIn: () => Promise<void>): Promise<Connection> {
  if (!('serviceWorker' in navigator)) throw new Error('This browser has no service workers; the demo needs one');
  // `?cache=`, `?auth=bearer` and `?budget=` of the page are the worker's too (its cache backend, whether it sends a bearer token, the cache's byte budget).
  const pageParams = new URLSearchParams(location.search);
  const swParams = new URLSearchParams();
  for (const key of ['cache', 'auth', 'budget']) if (pageParams.has(key)) swParams.set(key, pageParams.get(key)!);
  const workbox = new Workbox(swParams.size > 0 ? `/sw.js?${swParams}` : '/sw.js');
  const waiting: Array<(activate: () => void) => void> = [];
  let stopFlushing = () => {};
  workbox.addEventListener('waiting', () => {
    // Chromium lets a new worker that skips waiting take over only once the old one has no event in flight (or after
    // 5 minutes): the page's nudges and polls, each an event of the old worker, would hold the swap back, so they stop.
    const activate = () => {
      swapping = true;
      stopFlushing();
      workbox.addEventListener('controlling', () => location.reload());
      workbox.messageSkipWaiting();
    };
    waiting.forEach((l) => l(activate));
  });
  // A page the worker already controls need not wait for the update check (offline, it waits for the network to fail).
  const registered = workbox.register();
  if (navigator.serviceWorker.controller) registered.catch((err: unknown) => console.warn('service worker update check failed', err));
  else await registered;
  await navigator.serviceWorker.ready;
  await signedIn();
  const live = connectLiveTable('products');
  stopFlushing = keepFlushing();
  // A bearer-token session (`?auth=bearer`) sends its token with the feed too, as a header: EventSource cannot, so the
  // feed is read with fetch. A cookie session (or an open master) keeps EventSource.
  hostLiveStream('products', (lastEventId) =>
    bearerToken() === undefined
      ? new SseLiveStream('/api/products/events', { lastEventId })
      : new FetchSseLiveStream('/api/products/events', { lastEventId, headers: () => ({ authorization: `Bearer ${bearerToken()}` }) }),
  );
  return { live, workbox, persisted: requestPersistence(), onUpdateWaiting: (l) => waiting.push(l) };
}
