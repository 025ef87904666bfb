import type { Row } from '../../src/index.js';
import type { LiveTableClient } from '../../src/page.js';
import { h } from './dom.js';

export interface AddFormOptions {
  /** The write is durable in the queue: show it. */
  onQueued(): void;
  onWriteError(error: unknown): void;
}

/**
 * Add a product. The form is never disabled: the insert is queued
 * (`wait: 'queued'`), the fields clear at once, and the row shows on page 1
 * marked pending until the master confirms it.
 */
export function addForm(live: LiveTableClient, opts: AddFormOptions): HTMLFormElement {
  const id = h('input', { name: 'id', placeholder: 'id (optional)', autocomplete: 'off', 'aria-label': 'Id (optional: the master assigns one)', testid: 'add-id' });
  const name = h('input', { name: 'name', placeholder: 'Name', required: true, autocomplete: 'off', 'aria-label': 'Name', testid: 'add-name' });
  const cost = h('input', { name: 'price', type: 'number', step: 'any', placeholder: 'Price', required: true, 'aria-label': 'Price', testid: 'add-price' });
  const form = h(
    'form',
    { class: 'add-form', testid: 'add-form', 'aria-label': 'Add a product' },
    id,
    name,
    cost,
    h('button', { type: 'submit', class: 'primary', testid: 'add-submit' }, 'Add'),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const row: Row = { name: name.value.trim(), price: Number(cost.value) };
    const given = id.value.trim();
    form.reset();
    name.focus();
    const queued = given ? live.insert(given, row, { wait: 'queued' }) : live.insertReturnId(row, { wait: 'queued' });
    queued.then(opts.onQueued, opts.onWriteError);
  });
  return form;
}
