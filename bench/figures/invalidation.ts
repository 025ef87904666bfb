/**
 * Figure 4: a change made elsewhere, until a second tab is told. Tab A leads
 * the change feed (SSE); tab B listens with window.live.subscribe. Node sends
 * a PATCH straight to the master and takes the time before the request; tab B
 * calls an exposed function on its 'invalidated' (reason 'event') event and
 * Node takes the time when that call arrives. Both timestamps come from Node's
 * clock. The path: master → SSE → tab A → service worker (ingest, IdbCache
 * invalidation) → BroadcastChannel → tab B → CDP binding → Node.
 */
import { performance } from 'node:perf_hooks';
import type { Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';
import { vs, timingTable, type FigureReport } from '../lib/format.js';
import { summarize, type Summary } from '../lib/stats.js';
import { fmt } from './reads.js';

export interface InvalidationResult {
  /** PATCH sent (Node) → the second tab's 'invalidated' event reaches Node. */
  toSecondTab: Summary;
  /** PATCH sent → the master's HTTP response reaches Node (for scale). */
  patchResponse: Summary;
}

export async function invalidationFigure(h: Harness, c: Counts, progress: (line: string) => void): Promise<InvalidationResult> {
  const ctx = await h.newContext();
  const leader = await h.openLive(ctx);
  await leader.waitForFunction(() => window.streamState === 'open', undefined, { timeout: 15_000 });
  const tab = await h.openLive(ctx);
  await tab.evaluate(() => window.live.read({ page: 1 }));

  let heard: ((at: number) => void) | undefined;
  await tab.exposeFunction('__benchInvalidated', () => heard?.(performance.now()));
  await tab.evaluate(() => {
    const notify = (window as unknown as { __benchInvalidated: () => void }).__benchInvalidated;
    window.live.subscribe((e) => {
      if (e.type === 'invalidated' && e.reason === 'event') notify();
    });
  });
  await new Promise((r) => setTimeout(r, 300)); // let anything still in flight from opening the tabs arrive

  const toSecondTab: number[] = [];
  const patchResponse: number[] = [];
  for (let i = 0; i < c.warmup + c.invalidations; i++) {
    const told = new Promise<number>((resolve, reject) => {
      heard = resolve;
      setTimeout(() => reject(new Error(`the second tab heard no invalidation within 10 s (iteration ${i})`)), 10_000).unref();
    });
    const t = performance.now();
    const res = await fetch(`${h.url}/api/products/p000001`, { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ price: 2 + (i % 29) }) });
    const responded = performance.now();
    await res.body?.cancel();
    if (res.status !== 200) throw new Error(`PATCH: ${res.status}`);
    const at = await told;
    heard = undefined;
    if (i >= c.warmup) {
      toSecondTab.push(at - t);
      patchResponse.push(responded - t);
    }
    await new Promise((r) => setTimeout(r, 20)); // one change at a time
  }
  await ctx.close();
  const result = { toSecondTab: summarize(toSecondTab), patchResponse: summarize(patchResponse) };
  progress(`  4 PATCH → second tab told           p50 ${fmt(result.toSecondTab.p50)}  p95 ${fmt(result.toSecondTab.p95)}  p99 ${fmt(result.toSecondTab.p99)} ms  (n=${result.toSecondTab.n})`);
  return result;
}

export const invalidationReport: FigureReport<InvalidationResult> = {
  title: '4. Invalidation reaching another tab',
  tables: (r) =>
    timingTable([
      ['PATCH sent from Node → the second tab’s `invalidated` event reaches Node', r.toSecondTab],
      ['for scale: PATCH sent → its HTTP response in Node', r.patchResponse],
    ]),
  how: () =>
    'tab A leads the change feed (SSE); tab B listens with `window.live.subscribe`. Both timestamps are Node’s `performance.now()`: ' +
    'before the PATCH, and when tab B’s listener calls a function exposed with `page.exposeFunction` (no polling). The path: master → SSE → ' +
    'tab A → worker (`ingest`, the table’s entries marked stale) → BroadcastChannel → tab B → CDP binding → Node (the last hop adds 1 to 3 ms).',
  notes: [
    '**Slower than the 7.8 ms of 8f82628, not explained yet (2026-11-26).** A probe timed each hop in the same flow, median ms from the ' +
      'PATCH: the master’s response 4.8, the event in the leader tab 6.2, the invalidation done and `invalidated` posted by the worker ' +
      '9.1, heard in tab B 11.3–12.4, in Node 14.2 (the CDP binding hop alone about 2.9). A worker posting on a quiet channel reaches a ' +
      'tab in 1.0–1.2 ms, also when IndexedDB work or a busy thread follows the post, and the worker’s flush after each call is not the ' +
      'cause either. Each tab now keeps one BroadcastChannel for all its listeners (it had one per `subscribe`, hook, page reads, ' +
      '`keepFlushing`): tab B heard about 1 ms sooner in the probe.',
  ],
  summary: (r) => [{ ...vs('invalidation', '4 master change → second tab told', r.toSecondTab, 'for scale, not an alternative: the PATCH’s own response', r.patchResponse), ratioP50: '', ratioP95: '' }],
};
