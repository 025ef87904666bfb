import { workerInfo, type LiveTableClient } from '../../src/page.js';
import { h } from './dom.js';
import type { ListRead } from './product-list.js';

export interface StatusBar {
  el: HTMLElement;
  /** Show where the list's last read came from, whether it is stale, and how long it took. */
  showRead(read: ListRead): void;
}

/** One labelled value; `tone` colours it (ok, warn, bad). */
function chip(label: string, testid: string, title: string): { el: HTMLElement; set(text: string, tone?: string): void } {
  const value = h('b', { testid });
  const el = h('span', { class: 'chip', title }, h('span', { class: 'chip-label' }, label), value);
  return {
    el,
    set(text, tone = '') {
      value.textContent = text;
      el.dataset.tone = tone;
    },
  };
}

/**
 * Always on screen: the network, the write queue, the change feed, storage
 * persistence, and the last read. Everything the library decides on its own
 * is visible here.
 */
export function mountStatusBar(live: LiveTableClient, persisted: Promise<boolean>): StatusBar {
  const network = chip('network', 'status-network', 'navigator.onLine, updated by online/offline events');
  const pending = chip('pending', 'status-pending', 'Writes queued for the master (they survive reloads)');
  const dead = chip('rejected', 'status-dead', 'Writes the master refused for good: retry or discard them');
  const stream = chip('feed', 'status-stream', "The master's change feed, held by one tab and shared by all");
  const storage = chip('storage', 'status-storage', 'navigator.storage.persist(): whether the browser may evict the cache and the queue');
  const source = chip('read', 'status-source', 'Where the last page came from');
  const stale = chip('data', 'status-stale', 'Stale: invalidated since it was fetched; refreshing: shown from the cache at once and refetched in the background (swr)');
  const ms = chip('took', 'status-ms', 'Wall time of the last read, through the service worker');
  const cached = chip('cache', 'status-cache', 'Cache size (budget in the Offline panel) and pinned pages: fresh of pinned; "storage full" once the cache gave way to quota pressure');
  const auth = chip('session', 'status-auth', 'auth-required: the master wants a new sign-in; queued writes wait for it, none is lost');
  const el = h(
    'div',
    { class: 'status-bar', testid: 'status-bar', 'aria-label': 'Status' },
    ...[network, pending, dead, stream, auth, storage, cached, source, stale, ms].map((c) => c.el),
  );

  const showNetwork = () => (navigator.onLine ? network.set('online', 'ok') : network.set('offline', 'bad'));
  addEventListener('online', showNetwork);
  addEventListener('offline', showNetwork);
  showNetwork();

  const showCounts = (p: number, d: number) => {
    pending.set(String(p), p ? 'warn' : '');
    dead.set(String(d), d ? 'bad' : '');
  };
  const showStream = (state: string) => stream.set(state, state === 'open' ? 'ok' : state === 'closed' ? 'bad' : 'warn');
  let heardQueue = false;
  live.subscribe((e) => {
    if (e.type === 'queue') {
      heardQueue = true;
      showCounts(e.pending, e.dead);
    }
    if (e.type === 'stream') showStream(e.state);
    if (e.type === 'auth') showAuth(e.state === 'required');
  });
  const showAuth = (required: boolean) => auth.set(required ? 'auth-required' : 'ok', required ? 'bad' : 'ok');
  showAuth(false);
  void workerInfo().then((info) => info.tables.some((t) => t.authRequired) && showAuth(true), () => {});
  const showCache = () =>
    void workerInfo().then((info) => {
      const t = info.tables.find((table) => table.name === live.name)?.offline;
      if (!t?.cache) return cached.set('—');
      const pinned = t.pins.reduce((n, p) => n + p.pages, 0);
      const fresh = t.pins.reduce((n, p) => n + p.fresh, 0);
      const full = t.cache.quotaPressure ? ', storage full' : '';
      cached.set(`${Math.round(t.cache.bytes / 1024)} kB${pinned ? ` · pinned ${fresh}/${pinned} fresh` : ''}${full}`, full || fresh < pinned ? 'warn' : '');
    }, () => cached.set('—'));
  let cacheTimer: ReturnType<typeof setTimeout> | undefined;
  live.subscribe((e) => {
    if (e.type !== 'refreshed' && e.type !== 'invalidated' && e.type !== 'read' && e.type !== 'prefetch') return;
    clearTimeout(cacheTimer);
    cacheTimer = setTimeout(showCache, 500);
  });
  showCache();
  showCounts(0, 0);
  void Promise.all([live.pending(), live.deadLetters()]).then(([p, d]) => heardQueue || showCounts(p.length, d.length));
  showStream(window.streamState);

  storage.set('…');
  persisted.then(
    (yes) => storage.set(yes ? 'persistent' : 'best-effort', yes ? 'ok' : 'warn'),
    () => storage.set('unknown', 'warn'),
  );
  source.set('…');
  stale.set('…');
  ms.set('…');

  return {
    el,
    showRead(read) {
      ms.set(`${Math.round(read.ms)} ms`);
      if (read.result) {
        source.set(read.result.source, read.result.source === 'cache' ? 'ok' : '');
        stale.set(read.result.revalidating ? 'stale, refreshing' : read.result.stale ? 'stale' : 'fresh', read.result.stale ? 'warn' : 'ok');
      } else {
        const code = (read.error as { code?: string } | undefined)?.code;
        source.set(code === 'offline_miss' ? 'miss (offline)' : 'error', 'bad');
        stale.set('—');
      }
    },
  };
}
