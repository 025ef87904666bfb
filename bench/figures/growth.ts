/**
 * Figure 6: growth. One context fills its cache to 1k, 10k and 100k rows
 * (20, 200, 2,000 pages of 50 read through window.live); at each size:
 *   - hit latency of a 50-row page picked at random among the cached ones;
 *   - window.live.invalidate() time (a bridge call; the worker bumps the
 *     table's generation, one IndexedDB write whatever the cache size), with
 *     every entry fresh, and again with every entry already stale: both should
 *     stay flat from 1k to 100k rows;
 *   - one write's enqueue → applied time: each applied write invalidates the
 *     whole table, so it would pay for the cache size if invalidation did;
 *   - memory: JSHeapUsedSize of the page and of the service worker (which
 *     holds the cache) after a forced GC, and the origin's IndexedDB usage
 *     from navigator.storage.estimate().
 */
import type { Page } from 'playwright-core';
import { IPP, type Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';
import { int, ms, pct, row, slowerLine, type FigureReport } from '../lib/format.js';
import { summarize, type Summary } from '../lib/stats.js';
import { fmt } from './reads.js';

export interface GrowthLevel {
  rows: number;
  pages: number;
  /** Time to read the pages that were not cached (or were stale), per page. */
  fillMsPerPage: number;
  hit: Summary;
  invalidateFresh: Summary;
  invalidateStale: Summary;
  /** One write → its 'applied' event, right after a fill. */
  writeAppliedFresh: number;
  /** The writes after it (every entry already stale). */
  writeAppliedStale: Summary;
  pageHeapBytes: number;
  workerHeapBytes: number | undefined;
  storageUsageBytes: number;
  indexedDbBytes: number | undefined;
}

export async function growthFigure(h: Harness, c: Counts, progress: (line: string) => void): Promise<GrowthLevel[]> {
  const ctx = await h.newContext();
  const page = await h.openLive(ctx);
  const levels: GrowthLevel[] = [];
  for (const rows of c.growthRows) {
    const pages = Math.ceil(rows / IPP);
    const fillMsPerPage = await fill(page, pages);
    const hit = summarize(await hits(page, pages, c.warmup, c.growthHits));
    const pageHeapBytes = await h.pageHeap(page);
    const workerHeapBytes = await h.workerHeap(page);
    await new Promise((r) => setTimeout(r, 1_000)); // Chrome updates its usage figures shortly after writes
    const storage = await h.storageUse(page);

    // invalidate() with every entry fresh (refilled before each), then again with every entry already stale.
    const fresh: number[] = [];
    const stale: number[] = [];
    for (let i = 0; i < c.growthInvalidations; i++) {
      if (i > 0) await fill(page, pages, 4);
      fresh.push(await invalidateOnce(page));
      stale.push(await invalidateOnce(page));
    }
    // Single writes to their 'applied' event: each applied write invalidates the table, the first one
    // with every entry fresh, the next ones with every entry already stale (nobody read in between).
    await fill(page, pages, 4);
    const writes: number[] = [];
    for (let i = 0; i < c.growthWrites; i++) writes.push(await writeOnce(page, i));
    const level: GrowthLevel = {
      rows,
      pages,
      fillMsPerPage,
      hit,
      invalidateFresh: summarize(fresh),
      invalidateStale: summarize(stale),
      writeAppliedFresh: writes[0] ?? NaN,
      writeAppliedStale: summarize(writes.slice(1)),
      pageHeapBytes,
      workerHeapBytes,
      storageUsageBytes: storage.usage,
      indexedDbBytes: storage.indexedDB,
    };
    levels.push(level);
    progress(
      `  6 ${String(rows).padStart(7)} rows: hit p50 ${fmt(hit.p50)} p99 ${fmt(hit.p99)} ms; invalidate ${fmt(level.invalidateFresh.p50)} ms (stale ${fmt(level.invalidateStale.p50)}); ` +
        `write→applied ${fmt(level.writeAppliedFresh)} ms (stale ${fmt(level.writeAppliedStale.p50)}); worker heap ${mb(workerHeapBytes)}, page heap ${mb(pageHeapBytes)}, IndexedDB ${mb(storage.indexedDB)}`,
    );
  }
  await ctx.close();
  return levels;
}

const mb = (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? '–' : `${(bytes / 1048576).toFixed(1)} MB`);

/** Read pages 1..n, `lanes` at a time; returns ms per page that had to come from the master (0 when all were hits). */
async function fill(page: Page, n: number, lanes = 1): Promise<number> {
  return page.evaluate(
    async ({ n, lanes }) => {
      let fetched = 0;
      let next = 1;
      const t = performance.now();
      const lane = async () => {
        for (let p = next++; p <= n; p = next++) {
          // Strict: the fill must leave fresh entries, not start background refetches (the demo's worker reads swr).
          const r = await window.live.read({ page: p }, { freshness: 'strict' });
          if (r.source === 'master') fetched++;
        }
      };
      await Promise.all(Array.from({ length: lanes }, lane));
      return fetched ? (performance.now() - t) / fetched : 0;
    },
    { n, lanes },
  );
}

function hits(page: Page, pages: number, warmup: number, n: number): Promise<number[]> {
  return page.evaluate(
    async ({ pages, warmup, n }) => {
      let seed = 12345;
      const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
      const out: number[] = [];
      for (let i = 0; i < warmup + n; i++) {
        const p = 1 + Math.floor(random() * pages);
        const t = performance.now();
        const r = await window.live.read({ page: p });
        const ms = performance.now() - t;
        if (r.source !== 'cache') throw new Error(`page ${p} was not a hit`);
        if (i >= warmup) out.push(ms);
      }
      return out;
    },
    { pages, warmup, n },
  );
}

function invalidateOnce(page: Page): Promise<number> {
  return page.evaluate(async () => {
    const t = performance.now();
    await window.live.invalidate();
    return performance.now() - t;
  });
}

function writeOnce(page: Page, i: number): Promise<number> {
  return page.evaluate(async (i) => {
    const opId = crypto.randomUUID();
    let off = () => {};
    const applied = new Promise<number>((resolve, reject) => {
      // LiveTableClient's subscribe returns the unsubscribe function itself (its type says Promise: see BENCHMARKS.md).
      off = window.live.subscribe((e) => {
        if (e.type === 'applied' && e.op.opId === opId) resolve(performance.now());
        if (e.type === 'dead' && e.op.opId === opId) reject(new Error(`write refused: ${JSON.stringify(e.error)}`));
      }) as unknown as () => void;
    });
    const t = performance.now();
    await window.live.patch('p000002', { price: 3 + (i % 20) }, { wait: 'queued', opId });
    const at = await applied;
    off();
    return at - t;
  }, i);
}

export const growthReport: FigureReport<GrowthLevel[]> = {
  title: '6. Growth',
  tables: (growth) => [
    '| cached rows (pages of 50) | hit p50 / p95 / p99 | `invalidate()`, entries fresh | `invalidate()`, already stale | one write → applied, entries fresh | the same, already stale | worker JS heap | page JS heap | IndexedDB (origin) | ms per miss while filling |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...growth.map((g) =>
      row([
        `${int(g.rows)} (${int(g.pages)})`,
        pct(g.hit),
        ms(g.invalidateFresh.p50),
        ms(g.invalidateStale.p50),
        ms(g.writeAppliedFresh),
        ms(g.writeAppliedStale.p50),
        mb(g.workerHeapBytes),
        mb(g.pageHeapBytes),
        mb(g.indexedDbBytes),
        ms(g.fillMsPerPage),
      ]),
    ),
  ],
  how: (_, { counts: c }) =>
    `one context reads pages 1..N through \`window.live\`; at each size ${c.growthHits} hits of random cached pages; \`window.live.invalidate()\` ` +
    `timed from the page (a bridge call) ${c.growthInvalidations}× with every entry fresh (refilled before each) and once more right after ` +
    `(every entry already stale); then, after a refill, ${c.growthWrites} single write${c.growthWrites === 1 ? '' : 's'}, one at a time, timed to their \`applied\` event: each applied write ` +
    'invalidates the table, the first with every entry fresh, the others with every entry already stale. Medians shown. Heap: CDP `Performance.getMetrics` `JSHeapUsedSize` of the page and `Runtime.getHeapUsage` of the service worker (which ' +
    'holds the cache), each after a forced GC; IndexedDB: `navigator.storage.estimate().usageDetails.indexedDB` (the whole origin: cache and queue; Chrome compresses values on disk and updates this figure lazily, so read it as approximate).',
  notes: [
    'Since issue 11, `invalidate()` is one write of the table’s generation whatever the cache size: measured alone after that change (2026-11-25), ' +
      'it took 6.2, 3.9 and 4.9 ms with 1,000, 10,000 and 100,000 cached rows, against 13.9, 120 and 1,158 ms before.',
    'A write with versions on looks for its row’s version in a fresh cache entry. It did so by listing every entry of the table with its ' +
      'rows (`inspect`), so with 100,000 cached rows write → applied took 337 ms (the full run of c15a04a, 2026-11-26). It now lists the ' +
      'fresh entries’ keys from the small `uses` records (`Cache.freshKeys`) and reads only those: 49 and 65 ms in two full runs the same morning.',
  ],
  summary: (growth) => {
    const first = growth[0];
    const last = growth.at(-1);
    if (!first || !last) return [];
    return [
      {
        id: 'growth-invalidate',
        label: `6 \`invalidate()\` with ${int(first.rows)} / ${int(last.rows)} cached rows, entries fresh, p50`,
        ours: `${ms(first.invalidateFresh.p50)} / ${ms(last.invalidateFresh.p50)}`,
        alternative: '–',
        theirs: '',
        ratioP50: '',
        ratioP95: '',
      },
    ];
  },
  slower: (growth) => {
    const first = growth[0];
    const last = growth.at(-1);
    if (!first || !last || growth.length < 2 || last.writeAppliedFresh <= 2 * first.writeAppliedFresh) return [];
    return [
      slowerLine(
        `Writes with a large cache (${ms(first.writeAppliedFresh)} ms to applied at ${int(first.rows)} cached rows, ${ms(last.writeAppliedFresh)} ms at ${int(last.rows)})`,
        '`invalidate()` is one write of the table’s generation whatever the cache size, so this growth comes from elsewhere: the fuller ' +
          'IndexedDB database and the worker’s heap at this size; the profile of this run is the place to look.',
      ),
    ];
  },
};
