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
import type { Check } from '../lib/report.js';

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
    const lost = run.size - run.rowsUnique;
    const duplicated = run.rowsFound - run.rowsUnique + Math.max(0, run.masterWritesDelta - run.size);
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
