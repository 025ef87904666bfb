/**
 * Figure 3: flushing a backlog. With the context offline (the page and the
 * service worker both see navigator.onLine === false, so the flusher waits
 * instead of failing and backing off), N inserts are queued with
 * `wait: 'queued'` (8 in flight from the page). Then the context goes online:
 * the page's 'online' event is forwarded to the worker, which drains the queue.
 * Timed in the page from that 'online' event to the N-th 'applied' event.
 *
 * A flush longer than Chrome's limit for one event (5 minutes) gets the worker
 * stopped mid-drain, and nothing restarts the drain until a page calls the
 * worker again. The bench watches the worker's running status over CDP and,
 * after 10 s without an applied op, does what an app's next read would do:
 * one `window.live.read({page: 1})`. Those stalls are reported, and the rate
 * is given with and without them.
 *
 * Checked at the end: every insert is on the master exactly once (rows with
 * the run's id prefix, the master's row total, and /admin/stats writes), and
 * nothing is left pending or dead.
 */
import { performance } from 'node:perf_hooks';
import type { Counts } from '../lib/config.js';
import type { Harness } from '../lib/harness.js';
import type { Check } from '../lib/checks.js';
import { int, row, slowerLine, times, type FigureReport } from '../lib/format.js';
import { ratio } from '../lib/stats.js';

export interface FlushRun {
  size: number;
  /** Time to queue all N from the page, and the rate. */
  enqueueMs: number;
  enqueueOpsPerSec: number;
  /** From the page's 'online' event to the first and the last 'applied' event. */
  firstAppliedMs: number;
  drainMs: number;
  opsPerSec: number;
  /** Time with no applied op for 10 s or more (the worker stopped, waiting for a page to call it), and the rate without it. */
  stalledMs: number;
  opsPerSecExcludingStalls: number;
  /** Calls the bench made to restart a stalled drain. */
  nudges: number;
  /** Seconds after going online at which the worker was stopped (CDP ServiceWorker running status). */
  workerStoppedAtS: number[];
  /** Rate over the first and the last tenth of the ops: does the backlog slow each op down? */
  firstTenthOpsPerSec: number;
  lastTenthOpsPerSec: number;
  /** How the run was measured when the page heard no 'online' event (then: from the first applied op). */
  clock: 'online-event' | 'first-applied';
  masterWritesDelta: number;
  masterReplaysDelta: number;
  masterTotalDelta: number;
  rowsFound: number;
  rowsUnique: number;
  pendingAfter: number;
  deadAfter: number;
}

const CONCURRENCY = 8;
const NUDGE_AFTER_MS = 10_000;
const GIVE_UP_AFTER_NUDGES = 6;

interface PageTally {
  online: number;
  first: number;
  last: number;
  count: number;
  dead: number;
  nudges: number;
  stalledMs: number;
  at: number[];
}

export async function flushFigure(h: Harness, c: Counts, progress: (line: string) => void, checks: Check[]): Promise<FlushRun[]> {
  const runs: FlushRun[] = [];
  for (const size of c.flushSizes) {
    const run = await flushOnce(h, size, progress);
    runs.push(run);
    const lost = lostOf(run);
    const duplicated = duplicatedOf(run);
    const ok = lost === 0 && duplicated === 0 && run.masterWritesDelta === size && run.masterTotalDelta === size && run.pendingAfter === 0 && run.deadAfter === 0;
    checks.push({
      name: `flush of ${size}: zero lost, zero duplicated`,
      ok,
      detail: `rows found ${run.rowsFound} (unique ${run.rowsUnique}) of ${size}; master writes +${run.masterWritesDelta}, total +${run.masterTotalDelta}, replays +${run.masterReplaysDelta}; pending ${run.pendingAfter}, dead ${run.deadAfter}`,
    });
    const stalls = run.nudges
      ? `; worker stopped at ${run.workerStoppedAtS.map((s) => `${s.toFixed(0)} s`).join(', ') || '?'}, ${run.nudges} nudge(s), ${(run.stalledMs / 1000).toFixed(0)} s stalled, ${run.opsPerSecExcludingStalls.toFixed(0)} ops/s without`
      : '';
    progress(
      `  3 flush of ${String(size).padEnd(6)} drained in ${(run.drainMs / 1000).toFixed(1)} s = ${run.opsPerSec.toFixed(0)} ops/s ` +
        `(first tenth ${run.firstTenthOpsPerSec.toFixed(0)}, last tenth ${run.lastTenthOpsPerSec.toFixed(0)})${stalls}; lost ${lost}, duplicated ${duplicated} ${ok ? 'OK' : 'FAILED'}`,
    );
  }
  return runs;
}

async function flushOnce(h: Harness, size: number, progress: (line: string) => void): Promise<FlushRun> {
  const prefix = `bf${size}-${Date.now().toString(36)}-`;
  const ctx = await h.newContext();
  const page = await h.openLive(ctx);
  const statsBefore = await h.stats();
  const totalBefore = await h.total();

  await ctx.setOffline(true);
  await page.waitForFunction(() => !navigator.onLine);
  const enqueueMs = await page.evaluate(
    async ({ size, prefix, concurrency }) => {
      let next = 0;
      const t = performance.now();
      const lane = async () => {
        for (let i = next++; i < size; i = next++) {
          await window.live.insert(`${prefix}${String(i).padStart(6, '0')}`, { name: `Bench flush ${i}`, price: i % 50 }, { wait: 'queued' });
        }
      };
      await Promise.all(Array.from({ length: concurrency }, lane));
      return performance.now() - t;
    },
    { size, prefix, concurrency: CONCURRENCY },
  );
  const queued = await page.evaluate(() => window.live.pending().then((ops) => ops.length));
  if (queued !== size) throw new Error(`${queued} ops pending after queueing ${size} offline`);
  progress(`  3 flush of ${String(size).padEnd(6)} queued offline in ${(enqueueMs / 1000).toFixed(1)} s (${(size / (enqueueMs / 1000)).toFixed(0)} ops/s); going online`);

  // The worker's running status, from Node's clock.
  const stops: number[] = [];
  const cdp = await ctx.newCDPSession(page);
  cdp.on('ServiceWorker.workerVersionUpdated', (e) => {
    if (e.versions.some((v) => v.runningStatus === 'stopped')) stops.push(performance.now());
  });
  await cdp.send('ServiceWorker.enable');

  // Listen before going online; resolve at the N-th applied op of this run.
  await page.evaluate(
    ({ size, prefix, nudgeAfterMs, giveUpAfter }) => {
      const w = window as unknown as { __flush: Promise<PageTally> };
      w.__flush = new Promise((resolve, reject) => {
        const s: PageTally = { online: 0, first: 0, last: 0, count: 0, dead: 0, nudges: 0, stalledMs: 0, at: [] };
        let idle: ReturnType<typeof setTimeout>;
        let quietNudges = 0;
        const arm = () => {
          clearTimeout(idle);
          idle = setTimeout(() => {
            if (++quietNudges > giveUpAfter) return reject(new Error(`flush stalled: ${s.count} of ${size} applied, ${s.dead} dead, no progress after ${giveUpAfter} nudges`));
            s.nudges++;
            void window.live.read({ page: 1 }).catch(() => {}); // what the app's next read would do: the worker starts and flushes
            arm();
          }, nudgeAfterMs);
        };
        arm();
        addEventListener('online', () => (s.online = performance.now()), { once: true });
        window.live.subscribe((e) => {
          if ((e.type !== 'applied' && e.type !== 'dead') || !('id' in e.op && e.op.id.startsWith(prefix))) return;
          const now = performance.now();
          if (e.type === 'dead') s.dead++;
          else {
            if (s.count > 0 && now - s.last >= nudgeAfterMs) s.stalledMs += now - s.last;
            s.count++;
            s.last = now;
            s.at.push(now);
            if (s.count === 1) s.first = now;
          }
          quietNudges = 0;
          arm();
          if (s.count + s.dead === size) {
            clearTimeout(idle);
            resolve(s);
          }
        });
      });
    },
    { size, prefix, nudgeAfterMs: NUDGE_AFTER_MS, giveUpAfter: GIVE_UP_AFTER_NUDGES },
  );
  const onlineAt = performance.now();
  await ctx.setOffline(false);
  const s = await page.evaluate(() => (window as unknown as { __flush: Promise<PageTally> }).__flush);
  await cdp.detach().catch(() => {});
  const tenth = Math.max(1, Math.floor(s.at.length / 10));
  const rateOver = (from: number, to: number) => (to - from) / ((s.at[to]! - s.at[from]!) / 1000);
  const clock = s.online > 0 ? 'online-event' : 'first-applied';
  const start = s.online > 0 ? s.online : s.first;
  const drainMs = s.last - start;

  const after = await page.evaluate(async () => ({ pending: (await window.live.pending()).length, dead: (await window.live.deadLetters()).length }));
  const statsAfter = await h.stats();
  const totalAfter = await h.total();
  await ctx.close();

  // Every row the run inserted, read back from the master (they were appended after `totalBefore`).
  const ids: string[] = [];
  const ipp = 1000;
  for (let p = Math.floor(totalBefore / ipp) + 1; p <= Math.ceil(totalAfter / ipp); p++) {
    const rows = (await h.api(`/api/products?page=${p}&ipp=${ipp}`)).body.rows as Array<{ id: string }>;
    for (const r of rows) if (r.id.startsWith(prefix)) ids.push(r.id);
  }
  return {
    size,
    enqueueMs,
    enqueueOpsPerSec: size / (enqueueMs / 1000),
    firstAppliedMs: s.first - start,
    drainMs,
    opsPerSec: s.count / (drainMs / 1000),
    stalledMs: s.stalledMs,
    opsPerSecExcludingStalls: s.count / ((drainMs - s.stalledMs) / 1000),
    nudges: s.nudges,
    workerStoppedAtS: stops.map((t) => (t - onlineAt) / 1000),
    firstTenthOpsPerSec: rateOver(0, tenth),
    lastTenthOpsPerSec: rateOver(s.at.length - 1 - tenth, s.at.length - 1),
    clock,
    masterWritesDelta: statsAfter.writes - statsBefore.writes,
    masterReplaysDelta: statsAfter.replays - statsBefore.replays,
    masterTotalDelta: totalAfter - totalBefore,
    rowsFound: ids.length,
    rowsUnique: new Set(ids).size,
    pendingAfter: after.pending,
    deadAfter: Math.max(after.dead, s.dead),
  };
}

const lostOf = (f: FlushRun) => f.size - f.rowsUnique;
const duplicatedOf = (f: FlushRun) => f.rowsFound - f.rowsUnique + Math.max(0, f.masterWritesDelta - f.size);

export const flushReport: FigureReport<FlushRun[]> = {
  title: '3. Flushing a backlog',
  tables: (flush) => [
    '| writes | queued (offline) in | queue rate | online → last applied | **flush rate** | rate over the first / last tenth | worker stopped mid-drain | lost | duplicated | master writes / rows added / replays |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...flush.map((f) =>
      row([
        int(f.size),
        `${(f.enqueueMs / 1000).toFixed(1)} s`,
        `${int(f.enqueueOpsPerSec)} ops/s`,
        `${(f.drainMs / 1000).toFixed(1)} s`,
        `**${int(f.opsPerSec)} ops/s**${f.nudges ? ` (${int(f.opsPerSecExcludingStalls)} without the stall)` : ''}`,
        `${int(f.firstTenthOpsPerSec)} / ${int(f.lastTenthOpsPerSec)} ops/s`,
        f.nudges
          ? `at ${f.workerStoppedAtS.map((x) => `${x.toFixed(0)} s`).join(', ') || '?'}; drain resumed by the bench’s read after ${(f.stalledMs / 1000).toFixed(0)} s (${f.nudges} nudge${f.nudges === 1 ? '' : 's'})`
          : 'no',
        lostOf(f),
        duplicatedOf(f),
        `${int(f.masterWritesDelta)} / ${int(f.masterTotalDelta)} / ${f.masterReplaysDelta}`,
      ]),
    ),
  ],
  how: () =>
    'a fresh profile goes offline (`context.setOffline(true)`: the page and the worker both see `navigator.onLine === false`, so ' +
    'the flusher waits instead of failing and backing off); the page queues N inserts with `wait: \'queued\'`, 8 in flight. Then the context ' +
    'goes online; the page’s `online` event is forwarded to the worker, which drains the queue. Timed in the page from that `online` event ' +
    'to the N-th `applied` event. The worker’s running status is watched over CDP; after 10 s without an applied op the bench does what an ' +
    'app’s next read would do (`window.live.read({page: 1})`), which starts the worker and the drain again. Checked afterwards: each id is on the ' +
    'master exactly once, the master’s row count and `/admin/stats` `writes` grew by exactly N, and nothing is left pending or dead. ' +
    'The run fails (exit 1) otherwise.',
  notes: [
    '**Batched push (issue 16).** With `POST /api/:table/_batch` (docs/protocol.md, "Batches": up to 100 ops a request, taken and settled in ' +
      'one IndexedDB transaction each, one invalidation per batch), the first run of this figure alone (`bench/results/flush-batched.json`, ' +
      'shown above when present) gave 109 ops/s at 1,000 writes (a second run: 119) and 93 ops/s at 10,000, against 53 and 82 one op a request. ' +
      'The master is not what limits it: a batch of 100 keyed inserts costs it about 26 ms over loopback (measured from Node against the SQLite ' +
      'master), and the first op of a 1,000-op flush was applied 0.78 s after going online, so each batch of 100 cost about 0.8 s in the ' +
      'browser: the worker’s take and settle transactions, the 100 `applied` events broadcast to the tab, and the 100 change events the feed ' +
      'brings back to the worker. Coalescing the invalidations of those change events was tried and moved the 1,000 figure only from 109 to ' +
      '119 ops/s (within noise), so it was left out.',
    '**Faster take and settle, bursts, group commit (issue 16).** A timestamped drain of 300 ops then showed where a batch of 100 went: ' +
      '`take` 0.4–0.5 s (one awaited cursor update per op), the request 0.08–0.3 s, `appliedMany` 1.1–1.4 s (eight to ten awaited requests per ' +
      'op). Now `take` reads in chunks and marks together, `appliedMany` makes its requests together (0.16–0.3 s a batch in the same probe), ' +
      'the next batch is taken and sent while the last one’s invalidation and events are told (in order), the leader forwards the change ' +
      'events heard during its previous call as one call (one invalidation, one `lastEventId` put), and enqueues made while a strict ' +
      'transaction commits share the next one (group commit). Under the same load, before and after alternately: 1,000 writes 47–64 → ' +
      '126–208 ops/s, 10,000 writes 45–49 → 70–115. The 10,000 drain still slows as it goes: `take` scans the index from its front, past ' +
      'the ops already applied and deleted (a kept head since: next note). Figure 2 times one write at a time, so ' +
      'group commit does not change it.',
    '**Fewer requests per batch (issue 16, third round).** A timestamped drain of 3,000 ops (one batch of 100 about every 170 ms) showed ' +
      'the settle of a batch taking 65 ms: one lookup by opId and one delete per op. IndexedDB in Chromium costs per request, not per ' +
      'round, so the settle now finds the ops by the seqs they were taken with (one read over their span) and deletes runs of consecutive ' +
      'seqs as ranges (one request for a whole batch of one table): 33 ms. Also: `take` starts at the head it last found (per open ' +
      'database; seqs only grow), so a long drain no longer scans the deleted entries at the front of the index; the records of applied ops ' +
      'past the memory (10,000 ops or a day) are forgotten in one read of their keys, not a cursor step each; enqueue reads what it checks ' +
      'in one round. The probe went from 577 to 726 ops/s. What is left per batch: the request (about 40 ms: the master applies 100 keyed ' +
      'writes and sends their events), the settle (33 ms), and then the next `take` waits about 55 ms behind the last batch’s invalidation ' +
      'and its 100 `applied` events (the origin’s IndexedDB requests are served in turn, whichever database they are for).',
  ],
  summary: (flush, run) => {
    const seq = run.directPatch ? 1000 / run.directPatch.mean : NaN;
    return flush.map((f) => ({
      id: `flush-${f.size}`,
      label: `3 flush of ${int(f.size)} queued writes (lost / duplicated: ${lostOf(f)} / ${duplicatedOf(f)})`,
      ours: `${int(f.opsPerSec)} ops/s${f.nudges ? ` (${int(f.opsPerSecExcludingStalls)} without the stall)` : ''}`,
      alternative: 'sequential direct PATCHes from a page (1000 / mean)',
      theirs: `${int(seq)} ops/s`,
      ratioP50: times(ratio(seq, f.opsPerSecExcludingStalls)),
      ratioP95: '',
    }));
  },
  slower: (flush, run) => {
    const lines: string[] = [];
    const seq = run.directPatch ? 1000 / run.directPatch.mean : NaN;
    const slowest = flush.reduce((a, b) => (b.opsPerSecExcludingStalls < a.opsPerSecExcludingStalls ? b : a));
    if (slowest.opsPerSecExcludingStalls < seq) {
      lines.push(
        slowerLine(
          `Flush rate vs sequential direct PATCHes (${int(slowest.opsPerSecExcludingStalls)} vs ${int(seq)} ops/s at ${int(slowest.size)} writes)`,
          'Against a master that takes batches, the flusher takes up to 100 ops in one read-write transaction, sends them in one request, ' +
            'settles them in one transaction and invalidates the table once; but each op still gets its own `applied` event broadcast to every ' +
            'tab, and the master’s change event for each write comes back through the feed (leader tab → worker). The note above says where a batch’s time goes.',
        ),
      );
    }
    const stalled = flush.filter((f) => f.nudges > 0);
    if (stalled.length) {
      lines.push(
        slowerLine(
          `A long flush stops half-way (${stalled.map((f) => `${int(f.size)} writes: worker stopped at ${f.workerStoppedAtS.map((x) => `${x.toFixed(0)} s`).join(', ') || '?'}`).join('; ')})`,
          'Chrome stops a worker whose event runs past 5 minutes, and the drain stops with it. The ops survive (nothing was lost), and ' +
            '`keepFlushing()` in the page nudges the worker after 10 s without progress, which restarts it and resumes the drain; the bench nudges ' +
            'too, as a backstop, and counts it here.',
        ),
      );
    }
    return lines;
  },
};
