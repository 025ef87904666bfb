import { mergeFields, type QueuedOp, type Row } from '../../src/index.js';
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
    h('p', { class: 'muted' }, 'Retry sends the same write again (useful once the master would accept it); Discard drops it. A conflict shows both versions: keep yours, keep theirs, or merge (theirs with your fields).'),
    list,
  );
  const act = (call: () => Promise<void>) => call().catch(onError).finally(() => refresh.now());
  const item = (op: QueuedOp) => (op.deadReason === 'conflict' ? conflictItem(op) : rejectedItem(op));
  // A write that met a newer version of its row: both versions, and the three ways out.
  const conflictItem = (op: QueuedOp) => {
    const theirs = op.lastError?.theirs ?? null;
    // Field by field against the row the edit was made on: a field only one side changed keeps that change; one both changed keeps theirs.
    const base = 'base' in op && op.base && 'version' in op.base ? op.base.row : theirs ?? {};
    const mine = 'row' in op ? (op.kind === 'patch' ? { ...base, ...op.row } : op.row) : null;
    const merge = mergeFields()(base, mine, theirs);
    const merged = typeof merge === 'object' ? merge : undefined;
    return h(
      'li',
      { testid: 'dead-letter', 'data-op-id': op.opId, 'data-reason': 'conflict' },
      h('div', {}, h('b', {}, opLabel(op)), ' ', h('span', { class: 'muted' }, 'changed on the master since you edited it')),
      h('div', { class: 'reason', testid: 'conflict-mine' }, `Yours: ${rowSummary(op)}`),
      h('div', { class: 'reason', testid: 'conflict-theirs' }, theirs ? `Theirs: ${describe(theirs)}` : 'Theirs: deleted'),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', testid: 'conflict-mine-keep', title: 'Send your write again over their version', onclick: () => act(() => live.retry(op.opId)) }, 'Keep mine'),
        h('button', { type: 'button', testid: 'conflict-theirs-keep', title: 'Drop your write', onclick: () => act(() => live.discard(op.opId)) }, 'Keep theirs'),
        merged
          ? h('button', { type: 'button', testid: 'conflict-merge', title: `Their row with your fields: ${describe(merged)}`, onclick: () => act(() => live.resolve(op.opId, merged)) }, 'Merge')
          : null,
      ),
    );
  };
  const rejectedItem = (op: QueuedOp) =>
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
    if (e.type === 'dead' || e.type === 'retried' || e.type === 'queue' || e.type === 'applied') refresh.request();
  });
  void refresh.now();
  return el;
}

/** A row's fields in a line, without its id and version. */
function describe(row: Row): string {
  const { id: _id, _version: _v, ...fields } = row;
  return Object.entries(fields).map(([k, v]) => `${k} ${JSON.stringify(v)}`).join(', ');
}
