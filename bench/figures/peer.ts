/**
 * Figure 10: a peer, TanStack Query persisted to IndexedDB with offline
 * mutations (bench/site/tanstack-page.ts), side by side with vantage-live, on
 * what both promise across a reload:
 *
 * - a hit from the persisted cache after a reload: P pages read online, the tab
 *   reloaded, then one cached page read; timed from navigation start (the new
 *   document's `performance.now()` 0) to the rows in hand, and the read alone;
 * - offline writes queued across a reload and flushed on reconnect: N inserts
 *   queued offline, the tab reloaded while still offline, then the context goes
 *   online; timed in Node from going online until the master has counted N
 *   more writes, then every id checked on the master (lost, duplicated).
 *
 * Both pages are served by a Playwright route, so they also load offline (it
 * stands in for the app shell cache such an app needs). vantage-live's reload
 * bypasses the demo's worker for the navigation only, since its navigation
 * route would answer with the demo UI instead of the bench page; the new page
 * talks to the same worker, still running, through its registration.
 */
import { performance } from 'node:perf_hooks';
import type { BrowserContext, Page } from 'playwright-core';
import type { Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';
import type { Check } from '../lib/checks.js';
import { summarize, type Summary } from '../lib/stats.js';
import { int, ms, pct, row, type FigureReport } from '../lib/format.js';
import { ratio } from '../lib/stats.js';

export interface PeerReload {
  library: 'vantage-live' | 'TanStack Query';
  cachedPages: number;
  /** Navigation start → the page's rows in hand. */
  navToRows: Summary;
  /** Navigation start → ready to read (TanStack: the persisted client restored; vantage-live: `vantageReady`). */
  ready: Summary;
  /** The first read after ready, and a second read of another cached page. */
  firstRead: Summary;
  nextRead: Summary;
}

export interface PeerWrites {
  library: 'vantage-live' | 'TanStack Query';
  writes: number;
  /** Queued offline, until durable (TanStack: in its persisted record; vantage-live: acked). */
  queueMs: number;
  /** Still queued after the offline reload. */
  queuedAfterReload: number;
  /** Writes the master had counted before the context went online (a request that slipped out as the network went away). */
  beforeOnline: number;
  /** Going online → the master counted the N-th write. */
  drainMs: number;
  opsPerSec: number;
  lost: number;
  duplicated: number;
  masterWritesDelta: number;
}

export interface PeerResult {
  reloads: PeerReload[];
  writes: PeerWrites[];
}

const TQ_PATH = '/bench/tq/index.html';
const TQ_SCRIPT = '/bench/tq/tq.js';
const LIVE_SCRIPT = '/bench/live.js';
const QUIET_GIVE_UP_MS = 30_000;

type Progress = (line: string) => void;

export async function peerFigure(h: Harness, c: Counts, progress: Progress, checks: Check[]): Promise<PeerResult> {
  const reloads: PeerReload[] = [];
  for (const pages of c.peerCachedPages) {
    for (const run of [liveReloads, tanstackReloads]) {
      const r = await run(h, pages, c.peerReloads);
      reloads.push(r);
      progress(`  10 ${r.library.padEnd(14)} ${String(pages).padStart(4)} pages cached, reload → rows p50 ${ms(r.navToRows.p50)} ms (ready ${ms(r.ready.p50)}, first read ${ms(r.firstRead.p50)}, next ${ms(r.nextRead.p50)})`);
      await h.closeContexts();
    }
  }
  const writes: PeerWrites[] = [];
  for (const run of [liveWrites, tanstackWrites]) {
    const w = await run(h, c.peerWrites, progress);
    writes.push(w);
    progress(`  10 ${w.library.padEnd(14)} ${w.writes} offline writes across a reload: ${int(w.opsPerSec)} ops/s after reconnect; lost ${w.lost}, duplicated ${w.duplicated}`);
    await h.closeContexts();
  }
  const live = writes.find((w) => w.library === 'vantage-live')!;
  checks.push({
    name: `offline writes across a reload (${live.writes}): zero lost, zero duplicated`,
    ok: live.lost === 0 && live.duplicated === 0 && live.masterWritesDelta === live.writes,
    detail: `lost ${live.lost}, duplicated ${live.duplicated}, master writes +${live.masterWritesDelta}`,
  });
  return { reloads, writes };
}

// ---- hits after a reload ----

interface ReloadSample {
  navToRows: number;
  ready: number;
  firstRead: number;
  nextRead: number;
}

async function liveReloads(h: Harness, pages: number, reps: number): Promise<PeerReload> {
  const ctx = await h.newContext();
  await ctx.addInitScript(READ_ON_LOAD);
  const page = await openLiveServed(h, ctx);
  await page.evaluate(async (pages) => {
    for (let p = 1; p <= pages; p++) await window.live.read({ page: p });
  }, pages);
  const samples = await reloadLoop(page, 'vantage-live', pages, reps);
  await ctx.close();
  return { library: 'vantage-live', cachedPages: pages, ...summarizeSamples(samples) };
}

async function tanstackReloads(h: Harness, pages: number, reps: number): Promise<PeerReload> {
  const ctx = await h.newContext();
  await ctx.addInitScript(READ_ON_LOAD);
  const page = await openTanstack(h, ctx);
  await page.evaluate(async (pages) => {
    for (let p = 1; p <= pages; p++) await window.tq.read(p);
  }, pages);
  await until(page, async (pages) => (await window.tq.persisted()).queries === pages, pages);
  const samples = await reloadLoop(page, 'tanstack', pages, reps);
  await ctx.close();
  return { library: 'TanStack Query', cachedPages: pages, ...summarizeSamples(samples) };
}

/**
 * Runs in every document of the context before its scripts: when the tab was
 * told to (sessionStorage `peer-read`, which survives the reload), it reads
 * two cached pages the moment the library is ready, without waiting for the
 * bench to ask, and leaves the timings in `window.__peerSample`. It sees the
 * library arrive by trapping the global the page assigns (`tq` or `vantageReady`).
 */
const READ_ON_LOAD = `(() => {
  const spec = sessionStorage.getItem('peer-read');
  if (!spec) return;
  const { lib, p, q } = JSON.parse(spec);
  const name = lib === 'tanstack' ? 'tq' : 'vantageReady';
  let settle;
  window.__peerSample = new Promise((resolve, reject) => (settle = { resolve, reject }));
  const run = async (value) => {
    let read, ready;
    if (lib === 'tanstack') {
      await value.ready;
      ready = performance.now();
      const before = value.networkRequests();
      read = async (n) => {
        const r = await value.read(n);
        if (value.networkRequests() !== before) throw new Error('a TanStack read after the reload went to the network');
        return r;
      };
    } else {
      await value;
      ready = performance.now();
      read = async (n) => {
        const r = await window.live.read({ page: n });
        if (r.source !== 'cache') throw new Error('a vantage-live read after the reload came from ' + r.source);
        return r;
      };
    }
    await read(p);
    const firstAt = performance.now();
    await read(q);
    return { navToRows: firstAt, ready, firstRead: firstAt - ready, nextRead: performance.now() - firstAt };
  };
  Object.defineProperty(window, name, {
    configurable: true,
    set(value) {
      Object.defineProperty(window, name, { value, writable: true, configurable: true });
      run(value).then(settle.resolve, settle.reject);
    },
  });
})();`;

/** Reload `reps` times (plus one untimed, which warms the browser's code cache as a user's second visit would); after each, the tab reads cached page p, then q. */
async function reloadLoop(page: Page, lib: 'tanstack' | 'vantage-live', pages: number, reps: number): Promise<ReloadSample[]> {
  const samples: ReloadSample[] = [];
  for (let i = 0; i < reps + 1; i++) {
    const spec = { lib, p: (i % pages) + 1, q: ((i + 1) % pages) + 1 };
    await page.evaluate((spec) => sessionStorage.setItem('peer-read', JSON.stringify(spec)), spec);
    await reloadPast(page, lib === 'tanstack' ? 'tanstack' : 'bypass-worker');
    await page.waitForFunction(() => '__peerSample' in window);
    const s = await page.evaluate(() => (window as unknown as { __peerSample: Promise<ReloadSample> }).__peerSample);
    if (i > 0) samples.push(s);
  }
  await page.evaluate(() => sessionStorage.removeItem('peer-read'));
  return samples;
}

function summarizeSamples(samples: ReloadSample[]): Omit<PeerReload, 'library' | 'cachedPages'> {
  return {
    navToRows: summarize(samples.map((s) => s.navToRows)),
    ready: summarize(samples.map((s) => s.ready)),
    firstRead: summarize(samples.map((s) => s.firstRead)),
    nextRead: summarize(samples.map((s) => s.nextRead)),
  };
}

/** Serve these files of the site to the context from a route (fetched once now), so that its tab also loads them offline: its app shell. */
async function serveFromRoute(h: Harness, ctx: BrowserContext, paths: Record<string, string>): Promise<void> {
  const files = new Map<string, { body: string; contentType: string }>();
  for (const [path, contentType] of Object.entries(paths)) {
    const res = await fetch(h.url + path);
    if (!res.ok) throw new Error(`${path}: HTTP ${res.status}`);
    files.set(path, { body: await res.text(), contentType });
  }
  await ctx.route(
    (url) => files.has(url.pathname),
    (route) => route.fulfill({ status: 200, ...files.get(new URL(route.request().url()).pathname)! }),
  );
}

/** The TanStack page, served by a route so that it also loads offline. */
async function openTanstack(h: Harness, ctx: BrowserContext): Promise<Page> {
  await serveFromRoute(h, ctx, { [TQ_PATH]: 'text/html', [TQ_SCRIPT]: 'text/javascript' });
  const page = await h.openPage(ctx, TQ_PATH);
  await page.evaluate(() => window.tq.ready);
  return page;
}

/** The vantage-live bench page, served by a route as the TanStack page is, once the worker controls the context. */
async function openLiveServed(h: Harness, ctx: BrowserContext): Promise<Page> {
  const page = await h.openLive(ctx);
  await serveFromRoute(h, ctx, { [h.livePath]: 'text/html', [LIVE_SCRIPT]: 'text/javascript' });
  return page;
}

/**
 * Reload the tab with the navigation kept away from the demo's worker (CDP
 * `Network.setBypassServiceWorker`), whose navigation route would answer with
 * the demo UI instead of the bench page; the route above answers instead. The
 * new document talks to the same running worker through its registration.
 */
async function reloadPast(page: Page, worker: 'bypass-worker' | 'tanstack'): Promise<void> {
  if (worker === 'tanstack') {
    await page.reload();
    return;
  }
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setBypassServiceWorker', { bypass: true });
  await page.reload();
  await cdp.send('Network.setBypassServiceWorker', { bypass: false });
  await cdp.detach();
}

/** Wait in the page until an async condition holds (`waitForFunction` does not await a predicate's promise). */
async function until<A>(page: Page, condition: (arg: A) => Promise<boolean>, arg: A): Promise<void> {
  await page.evaluate(
    async ({ source, arg }) => {
      const holds = (0, eval)(source) as (arg: unknown) => Promise<boolean>;
      while (!(await holds(arg))) await new Promise((r) => setTimeout(r, 50));
    },
    { source: condition.toString(), arg },
  );
}

// ---- offline writes across a reload ----

async function liveWrites(h: Harness, n: number, progress: Progress): Promise<PeerWrites> {
  const prefix = `pl${n}-${Date.now().toString(36)}-`;
  const { before, ctx, page } = await offlineWith(h, openLiveServed);
  const queueMs = await page.evaluate(
    async ({ n, prefix }) => {
      let next = 0;
      const t = performance.now();
      const lane = async () => {
        for (let i = next++; i < n; i = next++) await window.live.insert(`${prefix}${i}`, { name: `Peer ${i}`, price: i % 50 }, { wait: 'queued' });
      };
      await Promise.all(Array.from({ length: 8 }, lane));
      return performance.now() - t;
    },
    { n, prefix },
  );
  await reloadPast(page, 'bypass-worker');
  await page.evaluate(() => window.vantageReady);
  const queuedAfterReload = await page.evaluate(async () => (await window.live.pending()).length);
  progress(`  10 vantage-live   ${n} queued offline in ${(queueMs / 1000).toFixed(1)} s; reloaded offline, ${queuedAfterReload} still queued; going online`);
  const drained = await drainToMaster(h, ctx, n, before);
  await until(page, async () => (await window.live.pending()).length === 0, undefined);
  return { library: 'vantage-live', writes: n, queueMs, queuedAfterReload, ...(await tally(h, drained, n, prefix)) };
}

async function tanstackWrites(h: Harness, n: number, progress: Progress): Promise<PeerWrites> {
  const prefix = `pt${n}-${Date.now().toString(36)}-`;
  const { before, ctx, page } = await offlineWith(h, openTanstack);
  const queueMs = await page.evaluate(
    async ({ n, prefix }) => {
      const t = performance.now();
      for (let i = 0; i < n; i++) window.tq.insert({ id: `${prefix}${i}`, name: `Peer ${i}`, price: i % 50 });
      // Durable once the persister has written them (it throttles to one write a second).
      while ((await window.tq.persisted()).mutations < n) {
        if (performance.now() - t > 30_000) throw new Error(`TanStack persisted ${(await window.tq.persisted()).mutations} of ${n} paused mutations in 30 s (${window.tq.paused()} paused in memory)`);
        await new Promise((r) => setTimeout(r, 20));
      }
      return performance.now() - t;
    },
    { n, prefix },
  );
  await page.reload();
  const { paused: queuedAfterReload } = await page.evaluate(() => window.tq.ready);
  progress(`  10 TanStack Query ${n} queued offline in ${(queueMs / 1000).toFixed(1)} s; reloaded offline, ${queuedAfterReload} restored paused; going online`);
  const drained = await drainToMaster(h, ctx, n, before);
  return { library: 'TanStack Query', writes: n, queueMs, queuedAfterReload, ...(await tally(h, drained, n, prefix)) };
}

/** The master's counts before a writes run, and a fresh context with `open`'s page in it, gone offline. */
async function offlineWith(h: Harness, open: (h: Harness, ctx: BrowserContext) => Promise<Page>) {
  const before = { writes: (await h.stats()).writes, total: await h.total() };
  const ctx = await h.newContext();
  const page = await open(h, ctx);
  await ctx.setOffline(true);
  await page.waitForFunction(() => !navigator.onLine);
  return { before, ctx, page };
}

interface Drained {
  statsBefore: number;
  totalBefore: number;
  beforeOnline: number;
  drainMs: number;
  counted: number;
}

/** Go online and poll the master until it counted `n` writes since `before` (the run's start), or none came for 30 s. */
async function drainToMaster(h: Harness, ctx: BrowserContext, n: number, before: { writes: number; total: number }): Promise<Drained> {
  const beforeOnline = (await h.stats()).writes - before.writes;
  const onlineAt = performance.now();
  await ctx.setOffline(false);
  let counted = beforeOnline;
  let lastProgress = onlineAt;
  let doneAt = onlineAt;
  while (counted < n && performance.now() - lastProgress < QUIET_GIVE_UP_MS) {
    await new Promise((r) => setTimeout(r, 25));
    const now = (await h.stats()).writes - before.writes;
    if (now > counted) [counted, lastProgress, doneAt] = [now, performance.now(), performance.now()];
  }
  return { statsBefore: before.writes, totalBefore: before.total, beforeOnline, drainMs: doneAt - onlineAt, counted };
}

async function tally(h: Harness, d: Drained, n: number, prefix: string): Promise<Omit<PeerWrites, 'library' | 'writes' | 'queueMs' | 'queuedAfterReload'>> {
  const ids = await h.idsAppended(d.totalBefore, prefix);
  const unique = new Set(ids).size;
  const masterWritesDelta = (await h.stats()).writes - d.statsBefore;
  return {
    beforeOnline: d.beforeOnline,
    drainMs: d.drainMs,
    opsPerSec: (d.counted - d.beforeOnline) / (d.drainMs / 1000),
    lost: n - unique,
    duplicated: ids.length - unique + Math.max(0, masterWritesDelta - n),
    masterWritesDelta,
  };
}

const byLib = (rs: PeerReload[], lib: PeerReload['library'], pages: number) => rs.find((r) => r.library === lib && r.cachedPages === pages);

export const peerReport: FigureReport<PeerResult> = {
  title: '10. A peer: TanStack Query, persisted to IndexedDB, with offline mutations',
  tables: (r) => [
    '| after a reload, cached pages | library | navigation → rows in hand, p50 / p95 / p99 | navigation → ready to read | first read | next read of another cached page |',
    '|---|---|---|---|---|---|',
    ...r.reloads.map((x) => row([int(x.cachedPages), x.library, pct(x.navToRows), pct(x.ready), pct(x.firstRead), pct(x.nextRead)])),
    '',
    '| offline writes across a reload | writes | queued until durable | still queued after the reload | reached the master before going online | online → master counted the last | **rate** | lost | duplicated | master writes |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...r.writes.map((w) =>
      row([w.library, int(w.writes), `${(w.queueMs / 1000).toFixed(1)} s`, int(w.queuedAfterReload), int(w.beforeOnline ?? 0), `${(w.drainMs / 1000).toFixed(1)} s`, `**${int(w.opsPerSec)} ops/s**`, w.lost, w.duplicated, int(w.masterWritesDelta)]),
    ),
  ],
  how: (_, { counts: c }) =>
    'the peer is `bench/site/tanstack-page.ts` (`@tanstack/query-core` with `@tanstack/query-persist-client-core`, `query-async-storage-persister` ' +
    'over `idb-keyval`), set up as TanStack Query’s docs recommend: `persistQueryClient` (one IndexedDB record holding the whole dehydrated ' +
    'client, rewritten at most once a second), `gcTime` a day, `staleTime` 5 minutes, `setMutationDefaults([\'insert\'], { mutationFn, retry: 3 })`, ' +
    'and once restored `resumePausedMutations()` then `invalidateQueries()`; plus `onlineManager.setOnline(navigator.onLine)`, without which ' +
    'v5 assumes it is online after a reload and runs restored mutations into a dead network; and `queryClient.mount()`, which React’s provider ' +
    'calls, so that it hears `online` and `offline`. It runs in a fresh context with no service worker. vantage-live is the bench page (`/bench/live.html`). ' +
    'Both pages are served by a Playwright route, so they also load offline (as an app shell cache would); vantage-live’s reloads bypass the ' +
    'demo’s worker for the navigation only (CDP `Network.setBypassServiceWorker`), whose navigation route would serve the demo UI, and the new ' +
    'page reaches the same running worker through its registration. ' +
    `Hits: pages 1–N read online, then ${c.peerReloads} reloads (after one untimed); in each new document an init script reads one cached page the moment ` +
    'the library is ready (it traps the global the page assigns), then another, timed from navigation start; a read that goes to the network fails the figure. Writes: N inserts queued offline (vantage-live: `wait: \'queued\'`, ' +
    '8 in flight; TanStack: `mutate` until its persisted record holds them all), the tab reloaded offline, then the context goes online; ' +
    'timed in Node from going online until the master’s `/admin/stats` counted N more writes (polled every 25 ms), then every id checked ' +
    'on the master. A lost or duplicated vantage-live write fails the run; the peer’s are reported.',
  notes: [
    'In the first run of this figure (c15a04a, 2026-11-26) vantage-live was ready 152 ms after navigation and read its first page 12 ms ' +
      'later: the bench page waited for the worker’s update check and for its whole `info` report, `keepFlushing` asked for that report ' +
      'as the page started, and a tab asked for its read plan only at its first read, which then crossed the bridge. Now the page is ready ' +
      'without those waits, keepFlushing asks at its first check, and a tab asks for its plan as it connects. TanStack Query is ready when ' +
      'its whole persisted client is restored, so its first read costs nothing after that, and its ready time grows with what it persisted.',
  ],
  summary: (r) => {
    const rows = [];
    for (const pages of [...new Set(r.reloads.map((x) => x.cachedPages))]) {
      const live = byLib(r.reloads, 'vantage-live', pages);
      const tq = byLib(r.reloads, 'TanStack Query', pages);
      rows.push({
        id: `peer-reload-${pages}`,
        label: `10 after a reload, ${int(pages)} pages cached: navigation → rows in hand`,
        ours: pct(live?.navToRows),
        alternative: 'TanStack Query, persisted to IndexedDB',
        theirs: pct(tq?.navToRows),
        ratioP50: ratioText(live?.navToRows.p50, tq?.navToRows.p50),
        ratioP95: ratioText(live?.navToRows.p95, tq?.navToRows.p95),
      });
    }
    const live = r.writes.find((w) => w.library === 'vantage-live');
    const tq = r.writes.find((w) => w.library === 'TanStack Query');
    if (live && tq) {
      rows.push({
        id: 'peer-offline-writes',
        label: `10 ${int(live.writes)} offline writes across a reload, flushed (lost / duplicated: ${live.lost} / ${live.duplicated})`,
        ours: `${int(live.opsPerSec)} ops/s`,
        alternative: `TanStack Query offline mutations (lost / duplicated: ${tq.lost} / ${tq.duplicated})`,
        theirs: `${int(tq.opsPerSec)} ops/s`,
        ratioP50: ratioText(tq.opsPerSec, live.opsPerSec),
        ratioP95: '',
      });
    }
    return rows;
  },
};

function ratioText(a: number | undefined, b: number | undefined): string {
  const x = ratio(a, b);
  return Number.isFinite(x) ? `×${x.toFixed(2)}` : '–';
}
