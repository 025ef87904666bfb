/**
 * The page's whole wiring of vantage-live: register the service worker,
 * connect to its products table, forward `online`, compete to host the
 * change feed, and ask for persistent storage.
 */
import { Workbox } from 'workbox-window';
import { connectLiveTable, keepFlushing, hostLiveStream, requestPersistence, type LiveTableClient } from '../../src/page.js';
import { SseLiveStream } from '../../src/index.js';

export interface Connection {
  live: LiveTableClient;
  workbox: Workbox;
  /** Resolves with the browser's answer to `navigator.storage.persist()`. */
  persisted: Promise<boolean>;
  /** Set when a new version of the worker is installed and waiting; call to switch to it (the page reloads). */
  onUpdateWaiting(listener: (activate: () => void) => void): void;
}

/** `signedIn` runs once the worker is ready and before anything talks to its tables (they exist only for a signed-in user). */
export async function connect(signedIn: () => Promise<void>): Promise<Connection> {
  if (!('serviceWorker' in navigator)) throw new Error('This browser has no service workers; the demo needs one');
  // `?cache=` and `?budget=` (the cache's byte budget) are handed to the worker, for comparisons and tests.
  const params = new URLSearchParams(location.search);
  const swParams = new URLSearchParams([...params].filter(([k]) => k === 'cache' || k === 'budget'));
  const workbox = new Workbox(swParams.size ? `/sw.js?${swParams}` : '/sw.js');
  const waiting: Array<(activate: () => void) => void> = [];
  workbox.addEventListener('waiting', () => {
    const activate = () => {
      workbox.addEventListener('controlling', () => location.reload());
      workbox.messageSkipWaiting();
    };
    waiting.forEach((l) => l(activate));
  });
  await workbox.register();
  await navigator.serviceWorker.ready;
  await signedIn();
  const live = connectLiveTable('products');
  keepFlushing();
  hostLiveStream('products', (lastEventId) => new SseLiveStream('/api/products/events', { lastEventId }));
  return { live, workbox, persisted: requestPersistence(), onUpdateWaiting: (l) => waiting.push(l) };
}
