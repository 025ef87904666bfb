import type { CacheEntryInfo } from '../../src/index.js';
import type { LiveTableClient } from '../../src/page.js';
import { coalesce } from './coalesce.js';
import { h, replaceChildren } from './dom.js';
import { age } from './format.js';

/** The cache keys of the table with their row counts and ages, as the worker's cache holds them. */
export function mountCacheView(live: LiveTableClient): { el: HTMLElement; tick(): void } {
  let entries: CacheEntryInfo[] = [];
  const body = h('tbody');
  const empty = h('p', { class: 'muted', testid: 'cache-empty' }, 'Nothing cached yet.');
  const table = h('table', { class: 'grid' }, h('thead', {}, h('tr', {}, ...['key', 'rows', 'fetched', ''].map((t) => h('th', {}, t)))), body);
  const el = h('section', { testid: 'inspector-cache' }, h('h3', {}, 'Cache'), empty, h('div', { class: 'scroll-x' }, table));

  const render = () => {
    empty.hidden = entries.length > 0;
    table.hidden = entries.length === 0;
    replaceChildren(
      body,
      ...entries.map((e) =>
        h(
          'tr',
          { testid: 'cache-entry', 'data-key': e.key, 'data-stale': String(e.stale) },
          h('td', { class: 'key' }, e.key),
          h('td', {}, e.rowCount),
          h('td', {}, age(e.fetchedAt)),
          h('td', {}, e.stale ? h('span', { class: 'badge warn' }, 'stale') : ''),
        ),
      ),
    );
  };
  const refresh = coalesce(async () => {
    entries = (await live.cacheEntries()).sort((a, b) => a.key.localeCompare(b.key, undefined, { numeric: true }));
    render();
  }, 300);

  live.subscribe((e) => (e.type === 'read' || e.type === 'invalidated') && refresh.request());
  void refresh.now();
  return { el, tick: render };
}
