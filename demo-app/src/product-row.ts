import type { Id, Row } from '../../src/index.js';
import { h } from './dom.js';
import { price } from './format.js';

export interface RowActions {
  edit(id: Id, row: Row): void;
  remove(id: Id, row: Row): void;
}

/** Where a row stands: confirmed by the master, or with a write still on its way (R3); a provisional row has no id from the master yet. */
export type RowState = 'settled' | 'pending' | 'provisional' | 'conflict';

const STATE_TEXT: Record<RowState, { label: string; title: string }> = {
  settled: { label: '✓', title: 'confirmed by the master' },
  pending: { label: 'pending', title: 'queued: waiting for the master to confirm' },
  provisional: { label: 'pending', title: 'queued: the master assigns its id when the insert arrives' },
  conflict: { label: 'conflict', title: "changed on the master since you edited it: this is the master's version; pick a resolution above" },
};

/** One product as a list item, marked with its state. */
export function productRow(id: Id, row: Row, state: RowState, actions: RowActions): HTMLLIElement {
  const marked = state === 'settled' || state === 'conflict' ? state : 'pending';
  const unaddressable = state === 'provisional' ? 'The master has not assigned its id yet' : undefined;
  return h(
    'li',
    { class: `product ${marked}`, testid: 'product-row', 'data-id': id, 'data-state': marked },
    h('span', { class: 'product-id', testid: 'row-id', title: id }, state === 'provisional' ? 'new' : id),
    h('span', { class: 'product-name', testid: 'row-name' }, String(row.name ?? '')),
    h('span', { class: 'product-price', testid: 'row-price' }, price(row.price)),
    h('span', { class: 'product-state', testid: 'row-state', title: STATE_TEXT[state].title }, STATE_TEXT[state].label),
    h(
      'span',
      { class: 'product-actions' },
      h('button', { type: 'button', testid: 'row-edit', disabled: !!unaddressable, title: unaddressable, onclick: () => actions.edit(id, row) }, 'Edit'),
      h('button', { type: 'button', class: 'danger', testid: 'row-delete', disabled: !!unaddressable, title: unaddressable, onclick: () => actions.remove(id, row) }, 'Delete'),
    ),
  );
}

/**
 * The same product being edited in place. The inputs stay usable the whole
 * time: saving queues a patch and closes the editor at once.
 */
export function productEditor(id: Id, row: Row, save: (partial: Row) => void, cancel: () => void): HTMLLIElement {
  const name = h('input', { name: 'name', required: true, 'aria-label': 'Name', testid: 'edit-name', value: String(row.name ?? '') });
  const cost = h('input', { name: 'price', type: 'number', step: 'any', required: true, 'aria-label': 'Price', testid: 'edit-price', value: String(row.price ?? '') });
  const form = h(
    'form',
    { class: 'product-editor', testid: 'row-editor' },
    h('span', { class: 'product-id', title: id }, id),
    name,
    cost,
    h(
      'span',
      { class: 'product-actions' },
      h('button', { type: 'submit', class: 'primary', testid: 'edit-save' }, 'Save'),
      h('button', { type: 'button', testid: 'edit-cancel', onclick: cancel }, 'Cancel'),
    ),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    save({ name: name.value.trim(), price: Number(cost.value) });
  });
  form.addEventListener('keydown', (event) => event.key === 'Escape' && cancel());
  return h('li', { class: 'product editing', testid: 'product-row', 'data-id': id, 'data-state': 'editing' }, form);
}
