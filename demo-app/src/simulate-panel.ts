import type { Id, Row } from '../../src/index.js';
import { isSwapping } from './connect.js';
import { h, rememberedDetails } from './dom.js';
import { price } from './format.js';
import { changeChaos, editAsSomeoneElse, firstRowsOnMaster, patchOnMaster, readChaos, resetChaos, seedMaster, type ChaosState } from './master-admin.js';

/** While the panel is open, the master's settings are read this often: failures get used up and "down" runs out on their own. */
const POLL_MS = 2_000;
const LATENCIES = [0, 300, 1_000, 3_000];
const DOWN_FOR_MS = 15_000;
const SEED_ROWS = 5_000;

/** Say which faults the master is injecting now. */
export function describeChaos(s: ChaosState): string {
  const parts: string[] = [];
  if (s.latencyMs) parts.push(`${s.latencyMs} ms latency`);
  if (s.failNext) parts.push(`next ${s.failNext} API requests fail with ${s.failStatus} (Retry-After ${s.retryAfterSec} s)`);
  if (s.dropAfterCommit) parts.push(`next ${s.dropAfterCommit} write response(s) dropped after commit`);
  if (s.refuseForMs) parts.push(`down for ${Math.ceil(s.refuseForMs / 1000)} s more`);
  if (s.pauseFeed) parts.push('change feed paused');
  return parts.length ? parts.join(' · ') : 'no faults: the master behaves';
}

/**
 * Buttons that make the master misbehave (its `/admin/chaos` API) or change
 * under the app's feet, so the library's answers can be watched: retries,
 * dead letters, stale reads, live invalidation.
 */
export interface SimulateOptions {
  /** Rows on screen with a write of this app still on its way: what "someone else" changes to make a conflict. */
  pendingIds(): Id[];
  /** The master may be back: send queued writes now rather than at their next backoff. */
  flush(): Promise<void>;
}

export function mountSimulatePanel(settledRows: () => Array<[Id, Row]>, opts: SimulateOptions): HTMLDetailsElement {
  let state: ChaosState | undefined;
  const stateLine = h('p', { class: 'chaos-state', testid: 'sim-state', role: 'status' }, '…');
  const said = h('p', { class: 'sim-message', testid: 'sim-message', 'aria-live': 'polite' });
  const chaosButtons: HTMLButtonElement[] = [];

  const refresh = () =>
    readChaos().then(show, (err: unknown) => {
      stateLine.textContent = `Cannot read the master's settings: ${(err as Error).message}`;
    });
  const run = async <T>(what: () => Promise<T>, done: (value: T) => string) => {
    try {
      said.textContent = done(await what());
    } catch (err) {
      said.textContent = `Failed: ${(err as Error).message}`;
    }
    await refresh();
  };
  const button = (testid: string, label: string, title: string, onclick: () => unknown) => h('button', { type: 'button', testid, title, onclick }, label);
  const chaosButton = (testid: string, label: string, title: string, action: () => Promise<unknown>, done: string) => {
    const b = button(testid, label, title, () => run(action, () => done));
    chaosButtons.push(b);
    return b;
  };

  const latencyButtons = LATENCIES.map((ms) => {
    const label = ms === 0 ? 'none' : ms < 1000 ? `${ms} ms` : `${ms / 1000} s`;
    const b = chaosButton(`sim-latency-${ms}`, label, `Every API request waits ${ms} ms`, () => changeChaos({ latencyMs: ms }), `Latency set to ${ms} ms.`);
    b.dataset.ms = String(ms);
    return b;
  });
  const pause = chaosButton(
    'sim-pause-feed',
    'Pause the feed',
    'Hold back change events; they are sent when the feed resumes',
    () => changeChaos({ pauseFeed: !state?.pauseFeed }),
    'Feed toggled.',
  );

  const show = (s: ChaosState | undefined) => {
    state = s;
    stateLine.textContent = s ? describeChaos(s) : 'Fault injection is off: start the master with --chaos.';
    for (const b of chaosButtons) b.disabled = !s;
    for (const b of latencyButtons) b.setAttribute('aria-pressed', String(s?.latencyMs === Number(b.dataset.ms)));
    pause.textContent = s?.pauseFeed ? 'Resume the feed' : 'Pause the feed';
    pause.setAttribute('aria-pressed', String(!!s?.pauseFeed));
  };

  const changeOnMaster = async () => {
    const onScreen = settledRows().map(([, row]) => row);
    const rows = onScreen.length ? onScreen : await firstRowsOnMaster();
    const row = rows[Math.floor(Math.random() * rows.length)];
    if (!row) throw new Error('the master has no rows to change');
    const old = typeof row.price === 'number' ? Math.round(row.price) : 0;
    const changed = await patchOnMaster(String(row.id), { price: ((old + 1 + Math.floor(Math.random() * 20)) % 40) + 1 });
    return `Changed "${String(changed.name)}" (${String(changed.id)}) to ${price(changed.price)} on the master, not through the app: the feed invalidates the cache and the list refetches.`;
  };
  // Someone else changes the row this app has a write queued for: when that write arrives, it meets a newer version.
  const changeMyPendingRow = async () => {
    const id = opts.pendingIds()[0];
    if (id === undefined) throw new Error('no row has a write waiting: edit one while the master is down, then come back here');
    const changed = await editAsSomeoneElse(id, { name: `Changed elsewhere ${new Date().toLocaleTimeString('en-GB')}` });
    return `Someone else renamed ${String(changed.id)} to "${String(changed.name)}" on the master. When your queued write arrives it meets this newer version: a conflict to resolve.`;
  };
  const seeded = (r: { rows: number }) => `The master now has ${r.rows.toLocaleString('en')} products.`;

  const panel = rememberedDetails(
    'simulate',
    { class: 'panel simulate', testid: 'simulate' },
    'Simulate',
    stateLine,
    h('div', { class: 'sim-row' }, h('span', { class: 'sim-label' }, 'Latency'), ...latencyButtons),
    h(
      'div',
      { class: 'sim-row' },
      chaosButton('sim-fail', '503 × 3', 'The next 3 API requests fail with 503 and Retry-After: 2', () => changeChaos({ failNext: 3, failStatus: 503, retryAfterSec: 2 }), 'The next 3 API requests fail with 503: writes retry after 2 s, reads fall back to the cache.'),
      chaosButton('sim-drop', 'Drop a reply', 'The next write is committed, then its response is lost', () => changeChaos({ dropAfterCommit: 1 }), 'The next write is committed and its answer lost: it is retried, and applied once (idempotency key).'),
      chaosButton('sim-down', 'Master down 15 s', 'Refuse every API connection for 15 s', () => changeChaos({ refuseForMs: DOWN_FOR_MS }), 'The master refuses connections for 15 s: reads serve the cache, writes wait in the queue.'),
      pause,
      chaosButton('sim-reset', 'Reset faults', 'Back to a well-behaved master', async () => {
        await resetChaos();
        void opts.flush().catch(() => {});
      }, 'Faults cleared: queued writes go now.'),
    ),
    h(
      'div',
      { class: 'sim-row' },
      button('sim-master-edit', 'Change a row on the master', "PATCH a random row's price straight on the master", () => run(changeOnMaster, (text) => text)),
      button('sim-conflict', 'Someone else edits my pending row', 'Rename a row you have a queued write for, on the master, as another client (works while the master is down for this app)', () => run(changeMyPendingRow, (text) => text)),
      button('sim-seed', `Seed ${SEED_ROWS.toLocaleString('en')} rows`, `Replace the products with ${SEED_ROWS} generated rows`, () => run(() => seedMaster(SEED_ROWS), seeded)),
      button('sim-seed-sample', '3 sample rows', 'Replace the products with the three sample rows', () => run(() => seedMaster(0), seeded)),
    ),
    said,
  );

  panel.addEventListener('toggle', () => panel.open && void refresh());
  setInterval(() => panel.open && !document.hidden && !isSwapping() && void refresh(), POLL_MS);
  void refresh();
  return panel;
}
