/**
 * The bench's measuring page (/bench/live.html): the demo's page contract
 * (window.live, window.vantageReady, window.vantageInfo, window.streamState)
 * wired exactly as demo-app/src/connect.ts wires it (the same /sw.js, scope /,
 * the same products table, `online` forwarding and change-feed leadership),
 * but with no UI (`?pageReads=off|idb` picks how reads are answered, see
 * below). The demo UI reacts to every table event (it re-reads the
 * list, lists the cache and the queue, asks the worker for its info), and that
 * work would compete with what is being timed; a real app's UI is its own.
 */
import { connectLiveTable, keepFlushing, hostLiveStream, requestPersistence, signIn, workerInfo } from '../../src/page.js';
import { SseLiveStream } from '../../src/index.js';

window.vantageInfo = () => workerInfo();
window.vantageReady = (async () => {
  // As the demo: a page the worker already controls does not wait for the update check.
  const registered = navigator.serviceWorker.register('/sw.js');
  if (!navigator.serviceWorker.controller) await registered;
  else registered.catch(() => {});
  await navigator.serviceWorker.ready;
  await signIn('guest'); // the demo's worker serves tables per user; the bench's master is open, as the demo's is by default
  // `?pageReads=off`: every read through the worker (the bridge path); `?pageReads=idb`: nothing kept in memory, so every hit is read from IndexedDB as a tab's first read of a page is.
  const mode = new URLSearchParams(location.search).get('pageReads');
  const live = connectLiveTable('products', { pageReads: mode === 'off' ? false : mode === 'idb' ? { maxEntries: 0 } : true });
  keepFlushing();
  hostLiveStream('products', (lastEventId) => new SseLiveStream('/api/products/events', { lastEventId }));
  void requestPersistence();
  window.live = live;
  // Subscribed before asking, and an event wins over the older answer: an `open` heard in between is not lost.
  let heard = false;
  live.subscribe((e) => {
    if (e.type === 'stream') [window.streamState, heard] = [e.state, true];
  });
  // As the demo: ready to read without waiting for the worker's whole report.
  void workerInfo().then((info) => {
    if (!heard) window.streamState = info.tables.find((t) => t.name === 'products')?.stream ?? 'closed';
  }, () => {});
  document.getElementById('status')!.textContent = 'connected';
})();
