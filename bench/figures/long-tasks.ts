/**
 * Figure 7: main-thread long tasks (> 50 ms, PerformanceObserver 'longtask')
 * in the page while it "scrolls" through 20 pages: 20 reads of 50 rows in a
 * row through window.live, each page rendered as 50 <li> appended to a list
 * (the demo UI renders only page 1, so the bench renders them itself, like an
 * infinite list would). Run once with a cold cache (misses) and once more over
 * the same pages (hits). Long tasks inside the service worker are not visible
 * to the page and are not counted.
 */
import type { Page } from 'playwright-core';
import type { Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';
import { int, row, type FigureReport } from '../lib/format.js';

export interface ScrollRun {
  kind: 'misses' | 'hits';
  pages: number;
  elapsedMs: number;
  longTasks: number;
  longTaskTotalMs: number;
  longTaskMaxMs: number;
}

export async function longTasksFigure(h: Harness, c: Counts, progress: (line: string) => void): Promise<ScrollRun[]> {
  const runs: ScrollRun[] = [];
  for (let rep = 0; rep < c.scrollReps; rep++) {
    const ctx = await h.newContext();
    const page = await h.openLive(ctx);
    const first = 2 + rep * c.scrollPages; // page 1 is already cached by the demo UI
    for (const kind of ['misses', 'hits'] as const) {
      const run = await scroll(page, first, c.scrollPages, kind);
      runs.push(run);
      progress(
        `  7 scroll ${c.scrollPages} pages (${kind.padEnd(6)}) ${run.elapsedMs.toFixed(0).padStart(5)} ms: ${run.longTasks} long tasks, ` +
          `${run.longTaskTotalMs.toFixed(0)} ms in total, longest ${run.longTaskMaxMs.toFixed(0)} ms`,
      );
    }
    await ctx.close();
  }
  return runs;
}

async function scroll(page: Page, first: number, count: number, kind: 'misses' | 'hits'): Promise<ScrollRun> {
  return page.evaluate(
    async ({ first, count, kind }) => {
      const entries: PerformanceEntry[] = [];
      const observer = new PerformanceObserver((list) => entries.push(...list.getEntries()));
      observer.observe({ type: 'longtask' });
      let list = document.getElementById('bench-scroll');
      list?.remove();
      list = document.createElement('ul');
      list.id = 'bench-scroll';
      document.body.append(list);
      const t = performance.now();
      for (let p = first; p < first + count; p++) {
        const r = await window.live.read({ page: p });
        if ((kind === 'hits') !== (r.source === 'cache')) throw new Error(`page ${p}: expected ${kind}, got a read from ${r.source}`);
        const frag = document.createDocumentFragment();
        for (const [id, row] of r.rows) {
          const li = document.createElement('li');
          li.dataset.id = id;
          li.textContent = `${String(row.name)} · ${String(row.price)}`;
          frag.append(li);
        }
        list.append(frag);
        list.lastElementChild?.scrollIntoView({ block: 'end' });
        await new Promise((r) => requestAnimationFrame(() => r(undefined)));
      }
      const elapsedMs = performance.now() - t;
      // Long-task entries are delivered asynchronously: let two frames pass.
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => setTimeout(r, 50))));
      entries.push(...observer.takeRecords());
      observer.disconnect();
      const durations = entries.filter((e) => e.startTime >= t).map((e) => e.duration);
      return {
        kind,
        pages: count,
        elapsedMs,
        longTasks: durations.length,
        longTaskTotalMs: durations.reduce((s, d) => s + d, 0),
        longTaskMaxMs: durations.length ? Math.max(...durations) : 0,
      };
    },
    { first, count, kind },
  );
}

export const longTasksReport: FigureReport<ScrollRun[]> = {
  title: '7. Main-thread long tasks while scrolling',
  tables: (runs) => [
    '| 20 pages read and rendered | wall time (at least one 16.7 ms frame per page) | long tasks (> 50 ms) | total long-task time | longest |',
    '|---|---|---|---|---|',
    ...runs.map((t) => row([t.kind, `${int(t.elapsedMs)} ms`, t.longTasks, `${int(t.longTaskTotalMs)} ms`, `${int(t.longTaskMaxMs)} ms`])),
  ],
  how: () =>
    'a `PerformanceObserver({type: \'longtask\'})` in the page while it reads 20 pages in a row through `window.live` and appends each ' +
    'page’s 50 rows as `<li>` to a list, one animation frame per page; first with a cold cache (misses), then the same pages again (hits). ' +
    'Long tasks in the service worker are not visible to the page.',
};
