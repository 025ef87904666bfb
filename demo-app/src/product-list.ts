import { OfflineMissError, type Id, type LiveTableEvent, type ReadResult, type Row } from '../../src/index.js';
import type { LiveTableClient } from '../../src/page.js';
import { coalesce } from './coalesce.js';
import { h, replaceChildren } from './dom.js';
import { age } from './format.js';
import { currentPage, goToPage, onPageChange } from './page-location.js';
import { productEditor, productRow } from './product-row.js';

/** Rows per page: the worker's masterIpp, so each page is one cache entry (`products/page_N`). */
export const PAGE_SIZE = 50;

/** Bursts of events (queued, queue, applied, invalidated) within this many ms cost one re-read. */
const REREAD_AFTER_MS = 200;

/** Table events after which the page on screen may show something else: a write queued, settled, refused or dropped, or a change elsewhere. */
const CHANGES: ReadonlySet<LiveTableEvent['type']> = new Set(['queued', 'applied', 'assigned', 'dead', 'conflict', 'retried', 'queue', 'invalidated', 'refreshed']);

/** The outcome of one read of the list, as the status bar shows it. */
export interface ListRead {
  page: number;
  /** Wall time of the call through the bridge, as the page saw it. */
  ms: number;
  result?: ReadResult;
  error?: unknown;
}

export interface ProductListOptions {
  onRead(read: ListRead): void;
  /** A write the library refused before queueing it (bad input, storage full). */
  onWriteError(error: unknown): void;
}

export interface ProductList {
  el: HTMLElement;
  /** Rows on screen that the master already has (no write pending). */
  settledRows(): Array<[Id, Row]>;
  /** Rows on screen with a write still on its way to the master. */
  pendingIds(): Id[];
  /** Read the current page again, now. */
  reload(): Promise<void>;
  /** Settles once the first read is on screen (its rows, or why there are none). */
  shown: Promise<void>;
}

/**
 * The products, one page at a time, read through `window.live`. Writes are
 * queued (`wait: 'queued'`) so nothing ever waits on the master; the page is
 * read again whenever the table reports a change.
 */
export function mountProductList(live: LiveTableClient, opts: ProductListOptions): ProductList {
  let last: ListRead | undefined;
  let editing: { id: Id; el: HTMLLIElement } | undefined;
  // Rows inserted without an id show under their op id until the master assigns one: nothing can be addressed to them yet.
  let provisional = new Set<Id>();
  const provisionalIds = async () => new Set((await live.pending()).filter((op) => op.kind === 'insertReturnId').map((op) => op.opId));

  const list = h('ol', { class: 'products', testid: 'product-list' });
  const meta = h('p', { class: 'list-meta', testid: 'list-meta' });
  const message = h('div', { class: 'list-message', testid: 'list-message', role: 'status', hidden: true });
  const pageInput = h('input', { type: 'number', min: 1, step: 1, inputmode: 'numeric', 'aria-label': 'Page number', testid: 'page-input' });
  const prev = h('button', { type: 'button', testid: 'page-prev', 'aria-label': 'Previous page', onclick: () => goToPage(currentPage() - 1) }, '‹ Prev');
  const next = h('button', { type: 'button', testid: 'page-next', 'aria-label': 'Next page', onclick: () => goToPage(currentPage() + 1) }, 'Next ›');
  const nextBottom = h('button', { type: 'button', testid: 'page-next-bottom', onclick: () => goToPage(currentPage() + 1) }, 'Next page ›');
  const jump = h('form', { class: 'page-jump' }, h('label', {}, 'Page ', pageInput), h('button', { type: 'submit', testid: 'page-go' }, 'Go'));
  jump.addEventListener('submit', (event) => {
    event.preventDefault();
    if (Number(pageInput.value) >= 1) goToPage(Number(pageInput.value));
  });
  const pager = h('nav', { class: 'pager', testid: 'pager', 'aria-label': 'Pages' }, prev, jump, next, h('span', { class: 'muted' }, `${PAGE_SIZE} per page`));
  const el = h('section', { class: 'list-panel', 'aria-label': 'Products' }, pager, meta, message, list, h('div', { class: 'pager-bottom' }, nextBottom));

  const write = async (call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (err) {
      opts.onWriteError(err);
    }
    await reads.now();
  };
  const actions = {
    edit(id: Id, row: Row) {
      editing = {
        id,
        el: productEditor(
          id,
          row,
          (partial) => {
            editing = undefined;
            void write(() => live.patch(id, partial, { wait: 'queued' }));
          },
          () => {
            editing = undefined;
            render();
          },
        ),
      };
      render();
      editing.el.querySelector('input')?.focus();
    },
    remove(id: Id) {
      if (editing?.id === id) editing = undefined;
      void write(() => live.delete(id, { wait: 'queued' }));
    },
  };

  const render = () => {
    const page = currentPage();
    // A re-read (another tab's change, the feed) must not undo a page number being typed.
    if (document.activeElement !== pageInput) pageInput.value = String(page);
    prev.disabled = page <= 1;
    const full = !last?.result || last.result.rows.length >= PAGE_SIZE;
    next.disabled = nextBottom.disabled = !full;
    if (!last || last.page !== page) {
      meta.textContent = `Page ${page} · loading…`;
      return;
    }
    if (last.error !== undefined) {
      message.hidden = false;
      replaceChildren(message, ...explain(last.error, page));
      replaceChildren(list);
      meta.textContent = `Page ${page}`;
      return;
    }
    const { rows, pendingIds, conflicts, source, stale, fetchedAt } = last.result!;
    const pending = new Set(pendingIds);
    const conflicted = new Set(conflicts.map((c) => c.id));
    if (editing && !rows.some(([id]) => id === editing!.id)) editing = undefined;
    const state = (id: Id) => (conflicted.has(id) ? 'conflict' : !pending.has(id) ? 'settled' : provisional.has(id) ? 'provisional' : 'pending');
    replaceChildren(list, ...rows.map(([id, row]) => (editing?.id === id ? editing.el : productRow(id, row, state(id), actions))));
    message.hidden = rows.length > 0;
    if (rows.length === 0) replaceChildren(message, h('strong', {}, `No products on page ${page}.`), ' ', page > 1 ? h('a', { href: '#page=1' }, 'Back to page 1') : null);
    const first = (page - 1) * PAGE_SIZE + 1;
    replaceChildren(
      meta,
      `Page ${page}`,
      rows.length ? ` · rows ${first}–${first + rows.length - 1}` : '',
      ` · from ${source} · fetched ${age(fetchedAt)}`,
      stale ? h('span', { class: 'badge warn', testid: 'list-stale', title: 'Invalidated since it was fetched, and the master could not be reached to refresh it' }, 'stale') : null,
    );
  };

  const load = async () => {
    const page = currentPage();
    const started = performance.now();
    let read: ListRead;
    try {
      const result = await live.read({ page, ipp: PAGE_SIZE });
      read = { page, ms: performance.now() - started, result };
      provisional = result.pendingIds.length ? await provisionalIds() : new Set();
    } catch (error) {
      read = { page, ms: performance.now() - started, error };
    }
    // The user may have moved on while this page was on its way: the next round reads theirs.
    if (page !== currentPage()) return;
    last = read;
    opts.onRead(read);
    render();
  };
  const reads = coalesce(load, REREAD_AFTER_MS);

  onPageChange(() => {
    editing = undefined;
    render();
    el.scrollIntoView({ block: 'nearest' });
    void reads.now();
  });
  addEventListener('online', () => reads.request());
  live.subscribe((e) => CHANGES.has(e.type) && reads.request());
  render();
  const shown = reads.now();

  return {
    shown,
    el,
    settledRows: () => (last?.result ? last.result.rows.filter(([id]) => !last!.result!.pendingIds.includes(id)) : []),
    pendingIds: () => last?.result?.pendingIds.filter((id) => !last!.result!.conflicts.some((c) => c.id === id)) ?? [],
    reload: () => reads.now(),
  };
}

/** Why a page could not be shown, in words a person can act on. */
function explain(error: unknown, page: number): Array<Node | string> {
  if (error instanceof OfflineMissError) {
    return [
      h('strong', {}, `Page ${page} has not been seen on this device yet, and the master cannot be reached.`),
      h('p', {}, 'Every page you opened before still works offline. ', page > 1 ? h('a', { href: '#page=1' }, 'Back to page 1') : ''),
    ];
  }
  const { name, message } = error as { name?: string; message?: string };
  return [h('strong', {}, `Page ${page} could not be read.`), h('p', {}, `${name ?? 'Error'}: ${message ?? String(error)}`)];
}
