import type { QueuedOp } from '../../src/index.js';
import type { LiveTableClient } from '../../src/page.js';
import { coalesce } from './coalesce.js';
import { h, replaceChildren } from './dom.js';
import { opLabel, reason, until } from './format.js';

/** Rows the view draws at most: a backlog of thousands would cost the page a redraw of all of them every second. */
const SHOWN = 50;

/** The write queue as the worker holds it: the oldest ops not yet applied, in the order they will be sent (W2), and how many more wait behind them. */
export function mountQueueView(live: LiveTableClient): { el: HTMLElement; tick(): void } {
  let ops: QueuedOp[] = [];
  const body = h('tbody');
  const empty = h('p', { class: 'muted', testid: 'queue-empty' }, 'The queue is empty: every write reached the master.');
  const table = h(
    'table',
    { class: 'grid' },
    h('thead', {}, h('tr', {}, ...['op', 'status', 'tries', 'next try', 'last error'].map((t) => h('th', {}, t)))),
    body,
  );
  const sendNow = h(
    'button',
    { type: 'button', class: 'small', testid: 'queue-flush', title: 'Send the oldest op now, without waiting out its backoff', onclick: () => void live.flush() },
    'Send now',
  );
  const more = h('p', { class: 'muted', testid: 'queue-more' });
  const el = h('section', { testid: 'inspector-queue' }, h('h3', {}, 'Write queue ', sendNow), empty, h('div', { class: 'scroll-x' }, table), more);

  const render = () => {
    sendNow.hidden = !ops.some((op) => op.status === 'queued');
    empty.hidden = ops.length > 0;
    table.hidden = ops.length === 0;
    more.hidden = ops.length <= SHOWN;
    more.textContent = `… and ${ops.length - SHOWN} more behind them.`;
    replaceChildren(
      body,
      ...ops.slice(0, SHOWN).map((op) =>
        h(
          'tr',
          { testid: 'queue-op', 'data-op-id': op.opId, 'data-status': op.status },
          h('td', { testid: 'queue-op-label' }, opLabel(op)),
          h('td', { testid: 'queue-op-status' }, op.status),
          h('td', { testid: 'queue-op-attempts' }, op.attempts),
          h('td', {}, op.status === 'queued' && op.attempts > 0 ? until(op.nextAttemptAt) : '—'),
          h('td', { class: 'error', testid: 'queue-op-error' }, reason(op.lastError)),
        ),
      ),
    );
  };
  const refresh = coalesce(async () => {
    const [pending, dead] = await Promise.all([live.pending(), live.deadLetters()]);
    ops = [...pending, ...dead].sort((a, b) => a.seq - b.seq);
    render();
  }, 100);
  live.subscribe((e) => {
    if (e.type === 'queued' || e.type === 'applied' || e.type === 'retrying' || e.type === 'dead' || e.type === 'queue') refresh.request();
  });
  void refresh.now();
  return { el, tick: render };
}
