import type { QueuedOp } from '../../src/index.js';
import type { LiveTableClient } from '../../src/page.js';
import { coalesce } from './coalesce.js';
import { h, replaceChildren } from './dom.js';
import { opLabel, reason, rowSummary } from './format.js';

/**
 * Writes the master refused for good (W4), with its reason. They never block
 * the queue and never vanish on their own: the user retries or discards each.
 */
export function mountDeadLetters(live: LiveTableClient, onError: (error: unknown) => void): HTMLElement {
  const list = h('ul', { class: 'dead-list' });
  const el = h(
    'section',
    { class: 'dead-letters', testid: 'dead-letters', hidden: true, 'aria-label': 'Rejected writes' },
    h('h2', {}, 'Rejected by the master'),
    h('p', { class: 'muted' }, 'Retry sends the same write again (useful once the master would accept it); Discard drops it.'),
    list,
  );
  const act = (call: () => Promise<void>) => call().catch(onError).finally(() => refresh.now());
  const item = (op: QueuedOp) =>
    h(
      'li',
      { testid: 'dead-letter', 'data-op-id': op.opId },
      h('div', {}, h('b', {}, opLabel(op)), ' ', h('span', { class: 'muted' }, rowSummary(op))),
      h('div', { class: 'reason', testid: 'dead-reason' }, reason(op.lastError)),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', testid: 'dead-retry', onclick: () => act(() => live.retry(op.opId)) }, 'Retry'),
        h('button', { type: 'button', class: 'danger', testid: 'dead-discard', onclick: () => act(() => live.discard(op.opId)) }, 'Discard'),
      ),
    );
  const refresh = coalesce(async () => {
    const dead = await live.deadLetters();
    el.hidden = dead.length === 0;
    replaceChildren(list, ...dead.map(item));
  }, 100);
  live.subscribe((e) => {
    if (e.type === 'dead' || e.type === 'queue' || e.type === 'applied') refresh.request();
  });
  void refresh.now();
  return el;
}
