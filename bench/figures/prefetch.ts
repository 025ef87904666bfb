/**
 * Figure 9: prefetching pages ahead of use (`window.live.prefetch`, issue 17):
 * N pages of 50 rows fetched by the service worker into its IndexedDB cache,
 * with a progress event per page over the bridge. Rows per second, and the
 * page's main-thread long tasks (> 50 ms, PerformanceObserver 'longtask')
 * while it runs: the work is in the worker, so the page should see none.
 */
import type { Check } from '../lib/checks.js';
import { int, mb, row, type FigureReport } from '../lib/format.js';
import type { Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';

export interface PrefetchRun {
  pages: number;
  rows: number;
  elapsedMs: number;
  rowsPerS: number;
  progressEvents: number;
  inOrder: boolean;
  longTasks: number;
  longTaskMaxMs: number;
  cacheBytes: number;
}

export async function prefetchFigure(h: Harness, c: Counts, progress: (line: string) => void, checks: Check[]): Promise<PrefetchRun> {
  const ctx = await h.newContext();
  const page = await h.openLive(ctx);
  const pages = c.prefetchPages;
  const run = await page.evaluate(async (pages) => {
    const entries: PerformanceEntry[] = [];
    const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
    observer.observe({ type: 'longtask' });
    const events: Array<{ done: number }> = [];
    const t = performance.now();
    // A bound method, not a function literal: tsx would wrap a literal in a helper the page does not have.
    const result = await window.live.prefetch({ pages: `1-${pages}` }, { onProgress: events.push.bind(events) });
    const elapsedMs = performance.now() - t;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 50))));
    entries.push(...observer.takeRecords());
    observer.disconnect();
    const durations = entries.filter((e) => e.startTime >= t).map((e) => e.duration);
    const status = await window.live.offlineStatus();
    if (result.state !== 'done') throw new Error(`the prefetch ended ${result.state}: ${result.error?.message ?? ''}`);
    return {
      pages: result.done,
      rows: result.rows,
      elapsedMs,
      rowsPerS: (result.rows / elapsedMs) * 1000,
      progressEvents: events.length,
      inOrder: events.every((e, i) => e.done === i + 1),
      longTasks: durations.length,
      longTaskMaxMs: durations.length ? Math.max(...durations) : 0,
      cacheBytes: status.cache?.bytes ?? 0,
    };
  }, pages);
  await ctx.close();
  progress(
    `  9 prefetch ${run.pages} pages: ${run.rows} rows in ${run.elapsedMs.toFixed(0)} ms (${run.rowsPerS.toFixed(0)} rows/s), ` +
      `${run.progressEvents} progress events${run.inOrder ? ' in order' : ' OUT OF ORDER'}, ${run.longTasks} long tasks in the page, cache ${(run.cacheBytes / 1e6).toFixed(1)} MB`,
  );
  checks.push({ name: 'prefetch progress in page order', ok: run.inOrder && run.progressEvents === pages && run.pages === pages, detail: `${run.progressEvents} events for ${run.pages} of ${pages} pages` });
  return run;
}

export const prefetchReport: FigureReport<PrefetchRun> = {
  title: '9. Prefetching pages ahead of use',
  tables: (r) => [
    '| pages prefetched | rows | wall time | rows/s | progress events (in page order) | long tasks in the page (> 50 ms) | longest | cache after |',
    '|---|---|---|---|---|---|---|---|',
    row([int(r.pages), int(r.rows), `${int(r.elapsedMs)} ms`, int(r.rowsPerS), `${int(r.progressEvents)} (${r.inOrder ? 'yes' : 'no'})`, r.longTasks, `${int(r.longTaskMaxMs)} ms`, mb(r.cacheBytes)]),
  ],
  how: () =>
    'a fresh context calls `window.live.prefetch({ pages: \'1-N\' })` with a cold cache; the service worker ' +
    'fetches the pages from the master one after another (50 rows each) into its IndexedDB cache and broadcasts a progress event per page, ' +
    'which the page counts. A `PerformanceObserver({type: \'longtask\'})` in the page watches the main thread for the whole run; the work ' +
    'happens in the worker, so the expected count is 0. Cache size as the cache measures it (UTF-8 JSON of the rows).',
  notes: [
    'The pages go one after another, each a fetch from the worker plus an IndexedDB `put` (about a miss, figure 1). Fetching a few pages at a ' +
      'time while still emitting progress in page order would raise rows/s. The run measured on its own (`bench/results/prefetch.json`) had ' +
      'a load average of 15 to 29 from other work: read its wall time and rows/s as a floor.',
  ],
  summary: (r) => [{ id: 'prefetch', label: `9 prefetch of ${int(r.pages)} pages (long tasks in the page)`, ours: `${int(r.rowsPerS)} rows/s (${r.longTasks})`, alternative: '–', theirs: '', ratioP50: '', ratioP95: '' }],
};
