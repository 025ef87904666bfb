import { describe, expect, it } from 'vitest';
import { LiveTable, MemCache, MemoryTable, type LiveTableEvent } from '../src/index.js';
import { pagesOf, type PrefetchEvent } from '../src/prefetch.js';
import { ManualEnv } from './support/manual-env.js';
import { ObservedTable } from './support/tables.js';

/** A table of `n` rows, 10 per page. */
function live(n: number, opts: { budgetBytes?: number } = {}) {
  const master = new ObservedTable(new MemoryTable('items', Array.from({ length: n }, (_, i) => [`r${i + 1}`, { id: `r${i + 1}`, n: i + 1 }])));
  const env = new ManualEnv();
  const cache = new MemCache({ budgetBytes: opts.budgetBytes });
  const table = new LiveTable(master, 'items', cache, { masterIpp: 10, env });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  const progress = () => events.filter((e): e is Extract<LiveTableEvent, { type: 'prefetch' }> => e.type === 'prefetch').map(({ done, total, state }) => `${done}/${total} ${state}`);
  return { master, env, cache, table, events, progress };
}

describe('page ranges', () => {
  it('reads "1-20", "7", { from, to } and the whole table up to maxRows', () => {
    expect(pagesOf({ pages: '1-20' }, 50)).toEqual({ from: 1, to: 20, whole: false });
    expect(pagesOf({ pages: '7' }, 50)).toEqual({ from: 7, to: 7, whole: false });
    expect(pagesOf({ pages: { from: 2, to: 3 } }, 50)).toEqual({ from: 2, to: 3, whole: false });
    expect(pagesOf({ maxRows: 1001 }, 50)).toEqual({ from: 1, to: 21, whole: true });
  });

  it('refuses a bad range with a typed error', () => {
    for (const pages of ['0-3', '5-2', 'a-b', '', { from: 1.5, to: 2 }]) expect(() => pagesOf({ pages }, 50)).toThrow(expect.objectContaining({ code: 'invalid_input' }));
    expect(() => pagesOf({ maxRows: 0 }, 50)).toThrow(expect.objectContaining({ code: 'invalid_input' }));
  });
});

describe('prefetch', () => {
  it('fills the cache ahead of use with progress events in page order, then reads hit', async () => {
    const { master, table, progress } = live(100);
    const result = await table.prefetch({ pages: '1-5' });
    expect(result).toMatchObject({ done: 5, total: 5, rows: 50, state: 'done' });
    expect(progress()).toEqual(['1/5 running', '2/5 running', '3/5 running', '4/5 running', '5/5 done']);
    expect(master.calls).toEqual(['list 1/10', 'list 2/10', 'list 3/10', 'list 4/10', 'list 5/10']);
    expect((await table.read({ page: 4 })).source).toBe('cache');
  });

  it('fetches the whole table up to maxRows and stops at its first short page', async () => {
    const { master, table } = live(35);
    expect(await table.prefetch({ maxRows: 1000 })).toMatchObject({ done: 4, total: 4, rows: 35, state: 'done' });
    expect(master.calls).toHaveLength(4);
  });

  it('does not fetch pages already fresh in the cache', async () => {
    const { master, table } = live(100);
    await table.read({ page: 2 });
    master.calls.length = 0;
    expect(await table.prefetch({ pages: '1-3' })).toMatchObject({ done: 3, rows: 30 });
    expect(master.calls).toEqual(['list 1/10', 'list 3/10']);
  });

  it('stops between pages when its signal aborts, keeping what it fetched', async () => {
    const { master, table, events } = live(100);
    const abort = new AbortController();
    table.subscribe((e) => e.type === 'prefetch' && e.done === 2 && abort.abort());
    const result = await table.prefetch({ pages: '1-10' }, abort.signal);
    expect(result).toMatchObject({ done: 2, state: 'cancelled' });
    expect(master.calls).toHaveLength(2);
    expect(events.filter((e) => e.type === 'prefetch').at(-1)).toMatchObject({ state: 'cancelled' });
  });

  it('is cancelled by id across the bridge: startPrefetch answers at once, cancelPrefetch stops it', async () => {
    const { table, events } = live(100);
    const ended = new Promise<PrefetchEvent>((resolve) => table.subscribe((e) => e.type === 'prefetch' && e.state !== 'running' && resolve(e)));
    table.subscribe((e) => e.type === 'prefetch' && e.done === 3 && table.cancelPrefetch('p1'));
    expect(table.startPrefetch({ pages: '1-10', id: 'p1' })).toEqual({ id: 'p1' });
    expect(await ended).toMatchObject({ id: 'p1', done: 3, state: 'cancelled' });
    await table.idle();
    expect(events.filter((e) => e.type === 'prefetch').map((e) => e.type === 'prefetch' && `${e.done} ${e.state}`)).toEqual(['1 running', '2 running', '3 running', '3 cancelled']);
  });

  it('lets user reads waiting for the master go first', async () => {
    const { master, table } = live(100);
    const userRead = table.read({ page: 9 });
    const prefetch = table.prefetch({ pages: '1-2' });
    await Promise.all([userRead, prefetch]);
    expect(master.calls[0]).toBe('list 9/10');
  });

  it('ends failed, with the error, when the master refuses', async () => {
    const { master, table } = live(100);
    master.goOffline();
    expect(await table.prefetch({ pages: '1-3' })).toMatchObject({ done: 0, state: 'failed', error: { code: 'master_unavailable' } });
  });
});

describe('pin', () => {
  it('keeps pinned pages whatever the budget, and reports their freshness', async () => {
    const { table, cache } = live(1000, { budgetBytes: 3000 });
    await table.prefetch({ pages: '1-3', pin: true });
    await table.prefetch({ pages: '4-20' });
    const entries = await cache.inspect('items/');
    expect(entries.filter((e) => e.pinned).map((e) => e.key)).toEqual(['items/page_1', 'items/page_2', 'items/page_3']);
    expect((await cache.usage()).bytes).toBeLessThanOrEqual(3000 + (entries.find((e) => e.pinned)?.bytes ?? 0) * 3);
    expect(entries.length).toBeLessThan(20);
    const status = await table.offlineStatus();
    expect(status.pins).toEqual([{ id: 'items/pin:1-3', label: 'pages 1-3', pages: 3, fresh: 3, stale: 0, missing: 0, oldestFetchedAt: 1_000_000 }]);
    expect(status.cache).toMatchObject({ budgetBytes: 3000 });
  });

  it('refreshes pinned pages in the background after an invalidation, without any read', async () => {
    const { master, table, env, events } = live(100);
    await table.prefetch({ pages: '1-2', pin: true });
    master.calls.length = 0;
    await master.table.patch('r1', { n: 100 });
    env.time += 5_000;
    await table.invalidate();
    await table.idle();
    expect(master.calls).toEqual(['list 1/10', 'list 2/10']);
    expect(events.filter((e) => e.type === 'read')).toHaveLength(0);
    expect((await table.offlineStatus()).pins[0]).toMatchObject({ fresh: 2, stale: 0, oldestFetchedAt: 1_005_000 });
    expect((await table.offlineStatus()).lastRefreshAt).toBe(1_005_000);
    env.online = false;
    const read = await table.read({ page: 1 });
    expect(read).toMatchObject({ source: 'cache', stale: false });
    expect(read.rows[0]![1]).toMatchObject({ n: 100 });
  });

  it('serves pinned pages offline, flagged stale once invalidated, and refreshes them when asked online', async () => {
    const { master, table, env } = live(100);
    await table.pin({ pages: '1-2' });
    await table.idle(); // pinning fetches the missing pages in the background
    expect((await table.offlineStatus()).pins[0]).toMatchObject({ fresh: 2, missing: 0 });
    env.online = false;
    await table.invalidate();
    await table.idle();
    expect(await table.read({ page: 2 })).toMatchObject({ source: 'cache', stale: true });
    master.calls.length = 0;
    env.online = true;
    await table.refreshPinned();
    expect(master.calls).toEqual(['list 1/10', 'list 2/10']);
    expect(await table.read({ page: 2 })).toMatchObject({ source: 'cache', stale: false });
  });

  it('unpins: the pages may be evicted again', async () => {
    const { table } = live(100);
    const pin = await table.pin({ pages: '1' });
    await table.unpin(pin.id);
    expect((await table.offlineStatus()).pins).toEqual([]);
    await expect(table.unpin('other/pin:1-1')).rejects.toMatchObject({ code: 'invalid_input' });
  });
});

describe('the budget option', () => {
  it('sets the cache budget from LiveTable options', async () => {
    const cache = new MemCache();
    new LiveTable(new MemoryTable('t'), 't', cache, { cacheBudgetBytes: 1234 });
    expect((await cache.usage()).budgetBytes).toBe(1234);
  });
});
