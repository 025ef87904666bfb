import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { ManualLiveStream } from '../src/stream/manual.js';
import { IdbCache, LiveTable, MemCache, MemoryTable, MasterRejectedError, type LiveTableEvent, type TableLike } from '../src/index.js';
import { ManualEnv } from './support/manual-env.js';
import { productsMaster } from './support/tables.js';

function live(opts: ConstructorParameters<typeof LiveTable>[3] = {}) {
  const master = productsMaster();
  const cache = new MemCache();
  const table = new LiveTable(master, 'products', cache, opts);
  return { master, cache, table };
}

describe('read path (R1)', () => {
  it('misses, reads the master, fills the cache, then hits without the master', async () => {
    const { master, table } = live();
    const first = await table.read({ page: 1 });
    expect(first.source).toBe('master');
    expect(first.rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);
    master.failWith = new Error('the master must not be asked again');
    const second = await table.read({ page: 1 });
    expect(second.source).toBe('cache');
    expect(second.rows).toEqual(first.rows);
    expect(master.calls).toEqual(['list 1/50']);
  });

  it('keys list pages and single rows separately, each page its own key', async () => {
    const { master, cache, table } = live({ masterIpp: 2 });
    await table.list({ page: 1, ipp: 2 });
    await table.list({ page: 2, ipp: 2 });
    await table.get('a');
    expect(master.calls).toEqual(['list 1/2', 'list 2/2', 'get a']);
    expect(table.pageCacheKey(2)).toBe('products/page_2');
    expect(table.idCacheKey('a')).toBe('products/id/a');
    await table.idle(); // a miss answers before its put
    expect((await cache.get('products/page_1'))!.rows.map(([id]) => id)).toEqual(['a', 'b']);
    expect((await cache.get('products/page_2'))!.rows.map(([id]) => id)).toEqual(['c']);
    expect((await cache.get('products/id/a'))!.rows).toEqual([['a', { id: 'a', name: 'Apple Pie', price: 12 }]]);
    await table.get('a');
    await table.list({ page: 2, ipp: 2 });
    expect(master.calls).toHaveLength(3);
  });

  it('caches a row the master does not have, as absent', async () => {
    const { master, table } = live();
    expect(await table.get('zz')).toBeUndefined();
    expect(await table.get('zz')).toBeUndefined();
    expect(master.calls).toEqual(['get zz']);
  });

  it('refuses a bad page request with a typed error', async () => {
    const { table } = live();
    await expect(table.list({ page: 0, ipp: 10 })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(table.list({ page: 1.5, ipp: 10 })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});

describe('write path (W2, W5)', () => {
  const writes: Array<[string, (t: TableLike) => Promise<unknown>, (m: MemoryTable) => Promise<unknown>]> = [
    ['insert', (t) => t.insert('d', { name: 'Donut', price: 5 }), (m) => m.get('d')],
    ['insertReturnId', (t) => t.insertReturnId({ name: 'Eclair', price: 9 }), async (m) => (await m.list()).find(([, r]) => r.name === 'Eclair')],
    ['replace', (t) => t.replace('a', { name: 'Apple Tart', price: 13 }), async (m) => (await m.get('a'))?.name === 'Apple Tart' || undefined],
    ['patch', (t) => t.patch('b', { price: 9 }), async (m) => (await m.get('b'))?.price === 9 || undefined],
    ['delete', (t) => t.delete('c'), async (m) => ((await m.get('c')) === undefined) || undefined],
    ['deleteAll', (t) => t.deleteAll(), async (m) => m.size === 0 || undefined],
  ];

  it.each(writes)('%s reaches the master, invalidates the cache, and the next read repopulates', async (_kind, write, landed) => {
    const { master, cache, table } = live();
    const before = await table.list({ page: 1, ipp: 50 });
    await table.get('a');
    await table.idle(); // both entries are in: the write must find them to mark them stale
    await write(table);
    expect(await landed(master.table)).toBeTruthy();
    expect((await cache.get('products/page_1'))!.stale).toBe(true);
    expect((await cache.get('products/id/a'))!.stale).toBe(true);
    const after = await table.read({ page: 1 });
    expect(after.source).toBe('master');
    expect(after.rows).toEqual(await master.table.list({ page: 1, ipp: 50 }));
    expect(after.rows).not.toEqual(before);
  });

  it('returns the master reply: the stored row, or the id the master assigned', async () => {
    const { table } = live();
    expect(await table.insert('d', { name: 'Donut', price: 5 })).toEqual({ id: 'd', name: 'Donut', price: 5 });
    const id = await table.insertReturnId({ name: 'Eclair', price: 9 });
    expect(await table.get(id)).toEqual({ id, name: 'Eclair', price: 9 });
    expect(await table.patch('b', { price: 9 })).toEqual({ id: 'b', name: 'Brioche', price: 9 });
  });

  it('rejects a write the master refuses and leaves the cache as it was', async () => {
    const { cache, table } = live();
    await table.list({ page: 1, ipp: 50 });
    const before = await cache.get('products/page_1');
    await expect(table.insert('a', { name: 'dup' })).rejects.toBeInstanceOf(MasterRejectedError);
    expect(await cache.get('products/page_1')).toEqual(before);
    expect((await table.read({ page: 1 })).source).toBe('cache');
  });

  it('sends writes to writeTarget while reads stay on the master', async () => {
    const target = new MemoryTable('products-outbox');
    const { master, table } = live({ writeTarget: target });
    await table.insert('d', { name: 'Donut', price: 5 });
    expect(await target.get('d')).toEqual({ id: 'd', name: 'Donut', price: 5 });
    expect(await master.table.get('d')).toBeUndefined();
    expect((await table.list()).map(([id]) => id)).toEqual(['a', 'b', 'c']);
    expect(master.calls.filter((c) => !c.startsWith('list') && !c.startsWith('get'))).toEqual([]);
  });

  it('gives 100 concurrent inserts each their own reply, in FIFO order at the master', async () => {
    const { master, table } = live();
    await master.table.deleteAll();
    const ids = Array.from({ length: 100 }, (_, i) => `p${String(i).padStart(3, '0')}`);
    const replies = await Promise.all(ids.map((id, i) => table.insert(id, { n: i })));
    replies.forEach((reply, i) => expect(reply).toEqual({ id: ids[i], n: i }));
    expect(master.calls.filter((c) => c.startsWith('insert'))).toEqual(ids.map((id) => `insert ${id}`));
    expect((await master.table.list()).map(([id]) => id)).toEqual(ids);
  });

  it('passes name and idField through from the master, and stores masterIpp', () => {
    const master = new MemoryTable('clients', [], 'client_id');
    const table = new LiveTable(master, 'clients-by-name', new MemCache(), { masterIpp: 25 });
    expect([table.name, table.idField, table.masterIpp, table.cacheKey]).toEqual(['clients', 'client_id', 25, 'clients-by-name']);
  });
});

describe('event path (E1)', () => {
  it.each([
    ['changed', { kind: 'changed' as const }],
    ['updated by id', { kind: 'updated' as const, id: 'a' }],
    ['reset', { kind: 'reset' as const }],
  ])('a %s event invalidates, and the next read refetches', async (_name, event) => {
    const stream = new ManualLiveStream();
    const { master, table } = live({ stream });
    const events: LiveTableEvent[] = [];
    table.subscribe((e) => events.push(e));
    await table.list({ page: 1, ipp: 50 });
    await table.get('a');
    await master.table.patch('a', { price: 99 });
    expect((await table.get('a'))?.price).toBe(12);
    const invalidated = new Promise((resolve) => table.subscribe((e) => e.type === 'invalidated' && resolve(e)));
    stream.push(event);
    await invalidated;
    expect((await table.get('a'))?.price).toBe(99);
    expect((await table.list({ page: 1, ipp: 50 }))[0]![1].price).toBe(99);
    expect(master.calls).toEqual(['list 1/50', 'get a', 'get a', 'list 1/50']);
    expect(events.some((e) => e.type === 'live')).toBe(true);
  });

  it('stops listening to the stream when closed', async () => {
    const stream = new ManualLiveStream();
    const { table } = live({ stream });
    expect(stream.listenerCount).toBe(1);
    table.close();
    expect(stream.listenerCount).toBe(0);
  });
});

describe('as a TableLike', () => {
  // Code that knows only TableLike: it cannot tell a LiveTable from a master.
  async function restock(table: TableLike): Promise<unknown[]> {
    await table.insert('d', { name: 'Donut', price: 5 });
    await table.patch('a', { price: 11 });
    await table.delete('b');
    return [await table.list(), await table.get('a'), table.name, table.idField];
  }

  it('behaves exactly like the master it wraps', async () => {
    const plain = productsMaster().table;
    const { table } = live();
    expect(await restock(table)).toEqual(await restock(plain));
  });
});

describe('freshness (generations, maxAgeMs, swr)', () => {
  it('keeps two LiveTables over one IdbCache (two workers during an update) right: an invalidation by one is seen by the other, and rows that raced it are stored stale', async () => {
    const master = productsMaster();
    const name = `two-writers-${Math.random()}`;
    const [one, two] = [new LiveTable(master, 'products', new IdbCache(name)), new LiveTable(master, 'products', new IdbCache(name))];
    expect((await one.read({ page: 1 })).source).toBe('master');
    await one.idle(); // a miss answers before its put: another worker sees the rows once they landed
    expect((await two.read({ page: 1 })).source).toBe('cache');
    await one.invalidate('event');
    expect((await two.read({ page: 1 })).source).toBe('master');

    // A read by `two` whose load is overtaken by an invalidation from `one` stores its rows stale.
    const list = master.table.list.bind(master.table);
    let release = () => {};
    let started = () => {};
    const loading = new Promise<void>((r) => (started = r));
    master.table.list = async (req) => {
      started();
      await new Promise<void>((r) => (release = r));
      return list(req);
    };
    await one.invalidate('event');
    const racing = two.read({ page: 1 });
    await loading;
    await one.invalidate('event');
    release();
    expect((await racing).source).toBe('master');
    master.table.list = list;
    expect((await one.read({ page: 1 })).source).toBe('master');
  });

  it('makes an entry older than maxAgeMs stale without any event', async () => {
    const env = new ManualEnv();
    const master = productsMaster();
    const table = new LiveTable(master, 'products', new MemCache(), { env, maxAgeMs: 60_000 });
    await table.read({ page: 1 });
    env.advance(59_000);
    expect((await table.read({ page: 1 })).source).toBe('cache');
    env.advance(2_000);
    expect((await table.read({ page: 1 })).source).toBe('master');
  });

  it('with swr, answers a stale entry from the cache at once, flagged, and refreshes it in the background', async () => {
    const master = productsMaster();
    const table = new LiveTable(master, 'products', new MemCache(), { freshness: 'swr' });
    const events: LiveTableEvent[] = [];
    table.subscribe((e) => events.push(e));
    await table.read({ page: 1 });
    await master.table.patch('a', { price: 99 });
    await table.invalidate('event');
    const answer = await table.read({ page: 1 });
    expect(answer).toMatchObject({ source: 'cache', stale: true, revalidating: true });
    expect(answer.rows[0]![1]).toMatchObject({ price: 12 });
    await table.idle();
    expect(events.filter((e) => e.type === 'refreshed')).toEqual([{ type: 'refreshed', cacheKey: 'products/page_1' }]);
    const fresh = await table.read({ page: 1 });
    expect(fresh).toMatchObject({ source: 'cache', stale: false, revalidating: false });
    expect(fresh.rows[0]![1]).toMatchObject({ price: 99 });
    // A strict read of a stale entry still waits for the master.
    await table.invalidate('event');
    expect(await table.read({ page: 1 }, { freshness: 'strict' })).toMatchObject({ source: 'master', stale: false });
  });
});
