import type { LiveTableClient, WorkerInfo } from '../../src/page.js';
import { coalesce } from './coalesce.js';
import { h, replaceChildren } from './dom.js';

/** Rows the demo keeps available offline: the whole table up to this many. */
export const OFFLINE_ROWS = 1_000;

/**
 * "Make available offline": pin the table (up to OFFLINE_ROWS rows) and fill
 * the cache with it, with a progress bar and a cancel button; below, what the
 * worker reports: cache size and budget, pinned pages and how fresh they are,
 * the last background refresh, the browser's storage estimate and whether it
 * is persistent.
 */
export function mountOfflinePanel(live: LiveTableClient, info: () => Promise<WorkerInfo>): HTMLElement {
  const progress = h('progress', { testid: 'offline-progress', max: 1, value: 0, hidden: true });
  const label = h('span', { class: 'muted', testid: 'offline-progress-label' });
  const cancel = h('button', { class: 'small', testid: 'offline-cancel', hidden: true }, 'Cancel');
  const make = h('button', { class: 'primary', testid: 'offline-make' }, 'Make available offline');
  const status = h('p', { class: 'offline-status', testid: 'offline-status' }, '…');

  const refresh = coalesce(async () => {
    const i = await info();
    const t = i.tables.find((table) => table.name === live.name)?.offline;
    const cache = t?.cache ? `cache ${kb(t.cache.bytes)} of ${kb(t.cache.budgetBytes)} (${t.cache.entries} entries, ${t.cache.evicted} evicted)` : 'cache size unknown';
    const pressure = t?.cache?.quotaPressure ? ` · storage full at ${time(t.cache.quotaPressure.at)}: the cache gave way` : '';
    const pins = t?.pins.length ? t.pins.map((p) => `${p.label}: ${p.fresh} fresh, ${p.stale} stale, ${p.missing} missing`).join('; ') : 'nothing pinned';
    const last = t?.lastRefreshAt ? ` · last background refresh ${time(t.lastRefreshAt)}` : '';
    const storage = i.storage?.quota ? ` · storage ${kb(i.storage.usage ?? 0)} of ${kb(i.storage.quota)}, ${i.storage.persisted ? 'persistent' : 'best-effort'}` : '';
    replaceChildren(status, `${cache}${pressure} · pinned: ${pins}${last}${storage}`);
  }, 300);
  live.subscribe((e) => (e.type === 'refreshed' || e.type === 'invalidated' || (e.type === 'prefetch' && e.state !== 'running')) && refresh.request());
  void refresh.now();

  make.addEventListener('click', () => {
    const abort = new AbortController();
    make.disabled = true;
    cancel.hidden = progress.hidden = false;
    cancel.onclick = () => abort.abort();
    void live
      .prefetch({ maxRows: OFFLINE_ROWS, pin: true }, {
        signal: abort.signal,
        onProgress: (e) => {
          progress.max = e.total;
          progress.value = e.done;
          label.textContent = `${e.done}/${e.total} pages, ${e.rows} rows`;
        },
      })
      .then(
        (r) => (label.textContent = r.state === 'done' ? `${r.done} pages (${r.rows} rows) kept offline` : r.state === 'cancelled' ? `cancelled after ${r.done} pages` : `failed: ${r.error?.message ?? ''}`),
        (err: unknown) => (label.textContent = `failed: ${String(err)}`),
      )
      .finally(() => {
        make.disabled = false;
        cancel.hidden = true;
      });
  });

  return h('section', { class: 'panel offline-panel', testid: 'offline-panel' }, h('h2', {}, 'Offline'), h('div', { class: 'offline-actions' }, make, cancel), progress, label, status);
}

const kb = (bytes: number) => (bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${(bytes / 1024).toFixed(1)} kB`);
const time = (at: number) => new Date(at).toLocaleTimeString();
