import { describe, expect, it } from 'vitest';
import { InvalidInputError, LiveTable, MemCache, OfflineMissError, StorageFullError, type Cache } from '../src/index.js';
import { ManualEnv } from './support/manual-env.js';
import { productsMaster } from './support/tables.js';

function setup(cache: Cache = new MemCache()) {
  const env = new ManualEnv();
  const master = productsMaster();
  const table = new LiveTable(master, 'products', cache, { env });
  return { env, master, table, cache };
}

describe('reads that work offline (R2)', () => {
  it('serves a stale page when the master cannot be reached after an invalidation', async () => {
    const { master, table } = setup();
    const fresh = await table.read({ page: 1 });
    await table.invalidate();
    master.goOffline();
    const stale = await table.read({ page: 1 });
    expect(stale).toMatchObject({ source: 'cache', stale: true, fetchedAt: fresh.fetchedAt });
    expect(stale.rows).toEqual(fresh.rows);
  });

  it('refetches a stale page when the master answers', async () => {
    const { master, table } = setup();
    await table.read({ page: 1 });
    await master.table.patch('a', { price: 1 });
    await table.invalidate();
    const read = await table.read({ page: 1 });
    expect(read).toMatchObject({ source: 'master', stale: false });
    expect(read.rows[0]![1].price).toBe(1);
  });

  it('fails a miss at once with OfflineMissError when the master is unreachable or the platform is offline', async () => {
    const { env, master, table } = setup();
    master.goOffline();
    await expect(table.read({ page: 2 })).rejects.toBeInstanceOf(OfflineMissError);
    master.failWith = undefined;
    env.online = false;
    await expect(table.get('a')).rejects.toMatchObject({ code: 'offline_miss', cacheKey: 'products/id/a' });
    expect(master.calls).toEqual(['list 2/50']);
  });

  it('serves stale without asking the master when the platform says it is offline', async () => {
    const { env, master, table } = setup();
    await table.read({ page: 1 });
    await table.invalidate();
    env.online = false;
    expect(await table.read({ page: 1 })).toMatchObject({ source: 'cache', stale: true });
    expect(master.calls).toEqual(['list 1/50']);
  });

  it('stores a read that raced an invalidation as stale, so it is refetched', async () => {
    const { master, table, cache } = setup();
    let release!: () => void;
    let fetching!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const fetchStarted = new Promise<void>((r) => (fetching = r));
    const list = master.table.list.bind(master.table);
    master.table.list = async (req) => {
      const rows = await list(req);
      fetching();
      await gate;
      return rows;
    };
    const racing = table.read({ page: 1 });
    await fetchStarted;
    await table.invalidate();
    release();
    await racing;
    await table.idle();
    expect((await cache.get('products/page_1'))?.stale).toBe(true);
  });
});

describe('pending writes overlaid on reads (R3)', () => {
  it('shows each kind of queued op on the page and the row, and says which ids are pending', async () => {
    const { env, table } = setup();
    await table.read({ page: 1 });
    await table.read({ page: 2, ipp: 2 });
    await table.get('b');
    env.online = false;
    await table.patch('a', { price: 10 }, { wait: 'queued' });
    await table.replace('b', { name: 'Baguette', price: 3 }, { wait: 'queued' });
    await table.delete('c', { wait: 'queued' });
    await table.insert('d', { name: 'Donut', price: 5 }, { wait: 'queued' });
    const tempId = await table.insertReturnId({ name: 'Eclair', price: 9 }, { wait: 'queued' });
    const page = await table.read({ page: 1 });
    expect(page.rows).toEqual([
      [tempId, { id: tempId, name: 'Eclair', price: 9 }],
      ['d', { id: 'd', name: 'Donut', price: 5 }],
      ['a', { id: 'a', name: 'Apple Pie', price: 10 }],
      ['b', { id: 'b', name: 'Baguette', price: 3 }],
    ]);
    expect(page.pendingIds.sort()).toEqual(['a', 'b', 'c', 'd', tempId].sort());
    expect(page.source).toBe('cache');
    expect((await table.read({ page: 2, ipp: 2 })).rows.map(([id]) => id)).toEqual([]);
    expect(await table.get('b')).toEqual({ id: 'b', name: 'Baguette', price: 3 });
    await expect(table.get('c')).rejects.toBeInstanceOf(OfflineMissError);
  });

  it('hides everything before a queued deleteAll, but not inserts after it', async () => {
    const { env, table } = setup();
    await table.read({ page: 1 });
    env.online = false;
    await table.deleteAll({ wait: 'queued' });
    await table.insert('z', { name: 'Zeppole' }, { wait: 'queued' });
    expect((await table.list({ page: 1, ipp: 50 })).map(([id]) => id)).toEqual(['z']);
  });

  it('drops the overlay once the master applied the op', async () => {
    const { env, table } = setup();
    await table.read({ page: 1 });
    env.online = false;
    await table.patch('a', { price: 10 }, { wait: 'queued' });
    env.online = true;
    await table.flush();
    const read = await table.read({ page: 1 });
    expect(read).toMatchObject({ source: 'master', pendingIds: [] });
    expect(read.rows[0]![1].price).toBe(10);
  });
});

describe('bad input to a write is refused before it is queued', () => {
  const cases: Array<[string, (t: LiveTable) => Promise<unknown>]> = [
    ['a row with a function', (t) => t.insert('d', { f: () => 1 })],
    ['a row with a Date', (t) => t.insert('d', { at: new Date() })],
    ['a row with NaN', (t) => t.patch('a', { price: NaN })],
    ['a row with a BigInt', (t) => t.replace('a', { n: 1n })],
    ['a row that refers to itself', (t) => { const row: Record<string, unknown> = {}; row.self = row; return t.insert('d', row); }],
    ['a row that is an array', (t) => t.insertReturnId([] as unknown as Record<string, unknown>)],
    ['a missing id', (t) => t.insert(undefined as unknown as string, { name: 'x' })],
    ['an empty id', (t) => t.delete('')],
    ['an id with a slash', (t) => t.patch('a/b', { name: 'x' })],
    ['a body id that contradicts the id', (t) => t.replace('a', { id: 'b' })],
    ['a row over the size limit', (t) => t.insert('d', { blob: 'x'.repeat(600 * 1024) })],
  ];
  it.each(cases)('%s', async (_name, write) => {
    const { master, table } = setup();
    await expect(write(table)).rejects.toBeInstanceOf(InvalidInputError);
    expect(await table.queue.ops()).toEqual([]);
    expect(master.calls).toEqual([]);
  });
});

describe('storage full', () => {
  it('a put the cache refuses after the read answered: the rows still answer, the cache keeps what it had, the next read is a miss again', async () => {
    const inner = new MemCache();
    const full: Cache = {
      get: (k) => inner.get(k),
      invalidatePrefix: (p) => inner.invalidatePrefix(p),
      generation: (p) => inner.generation(p),
      put: async () => {
        throw new StorageFullError(new DOMException('quota', 'QuotaExceededError'));
      },
    };
    const { table } = setup(full);
    const first = await table.read({ page: 1 });
    expect(first).toMatchObject({ source: 'master', stale: false });
    expect(first.rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);
    await table.idle();
    expect(await inner.inspect()).toEqual([]);
    expect(await table.read({ page: 1 })).toMatchObject({ source: 'master', rows: first.rows });
  });
});
