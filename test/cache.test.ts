import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { IdbCache, MemCache, NoCache, type Cache } from '../src/index.js';

let dbCount = 0;
const backends: Array<[string, () => Cache]> = [
  ['MemCache', () => new MemCache()],
  ['IdbCache', () => new IdbCache(`cache-test-${++dbCount}`)],
];

describe.each(backends)('the cache contract: %s', (_name, make) => {
  it('returns what was put', async () => {
    const cache = make();
    await cache.put('t/page_1', { rows: [['a', { id: 'a', n: 1 }]], fetchedAt: 5 });
    expect(await cache.get('t/page_1')).toEqual({ rows: [['a', { id: 'a', n: 1 }]], fetchedAt: 5 });
    expect(await cache.get('t/page_2')).toBeUndefined();
  });

  it('replaces an entry put twice', async () => {
    const cache = make();
    await cache.put('t/page_1', { rows: [['a', { id: 'a' }]], fetchedAt: 1 });
    await cache.put('t/page_1', { rows: [['b', { id: 'b' }]], fetchedAt: 2 });
    expect(await cache.get('t/page_1')).toEqual({ rows: [['b', { id: 'b' }]], fetchedAt: 2 });
  });

  it('marks entries under a prefix stale, keeps their rows, and leaves other keys alone', async () => {
    const cache = make();
    for (const key of ['t/page_1', 't/id/a', 'tt/page_1', 'u/page_1', 's/page_1']) {
      await cache.put(key, { rows: [['a', { key }]], fetchedAt: 1 });
    }
    await cache.invalidatePrefix('t/');
    expect(await cache.get('t/page_1')).toEqual({ rows: [['a', { key: 't/page_1' }]], fetchedAt: 1, stale: true });
    expect((await cache.get('t/id/a'))?.stale).toBe(true);
    for (const key of ['tt/page_1', 'u/page_1', 's/page_1']) expect((await cache.get(key))?.stale).toBeFalsy();
  });

  it('lists the fresh entries of a table without their rows: not those invalidated, raced, or of another table', async () => {
    const cache = make();
    await cache.put('t/page_1', { rows: [['a', { id: 'a' }]], fetchedAt: 1 });
    const raced = await cache.generation('t/');
    await cache.invalidatePrefix('t/');
    await cache.put('t/page_2', { rows: [['b', { id: 'b' }]], fetchedAt: 2 });
    await cache.put('t/page_3', { rows: [['c', { id: 'c' }]], fetchedAt: 2, generation: raced });
    await cache.put('tt/page_1', { rows: [['d', { id: 'd' }]], fetchedAt: 2 });
    expect(await cache.freshKeys!('t/')).toEqual(['t/page_2']);
  });

  it('stores rows loaded under an older generation as stale: they raced an invalidation', async () => {
    const cache = make();
    const before = await cache.generation('t/');
    await cache.invalidatePrefix('t/');
    expect(await cache.generation('t/')).toBe(before + 1);
    await cache.put('t/page_1', { rows: [], fetchedAt: 1, generation: before });
    expect((await cache.get('t/page_1'))?.stale).toBe(true);
    await cache.put('t/page_1', { rows: [], fetchedAt: 2, generation: before + 1 });
    expect((await cache.get('t/page_1'))?.stale).toBeFalsy();
    expect(await cache.generation('u/')).toBe(0);
  });

  it('does not let a caller change what is cached by mutating what it got', async () => {
    const cache = make();
    const rows: CachedRowsish = { rows: [['a', { id: 'a', n: 1 }]], fetchedAt: 1 };
    await cache.put('t/page_1', rows);
    rows.rows[0]![1].n = 2;
    const got = await cache.get('t/page_1');
    got!.rows[0]![1].n = 3;
    expect((await cache.get('t/page_1'))!.rows[0]![1]).toEqual({ id: 'a', n: 1 });
  });

  it('lists its entries with row counts for inspectors', async () => {
    const cache = make();
    await cache.put('t/page_1', { rows: [['a', {}], ['b', {}]], fetchedAt: 7 });
    await cache.put('u/page_1', { rows: [], fetchedAt: 8 });
    expect(await cache.inspect!('t/')).toEqual([{ key: 't/page_1', rowCount: 2, fetchedAt: 7, stale: false, bytes: 19, pinned: false }]);
  });
});

type CachedRowsish = { rows: Array<[string, Record<string, unknown>]>; fetchedAt: number };

describe('NoCache', () => {
  it('keeps nothing, so every read goes to the master', async () => {
    const cache = new NoCache();
    await cache.put('t/page_1', { rows: [['a', {}]], fetchedAt: 1 });
    expect(await cache.get('t/page_1')).toBeUndefined();
  });
});
