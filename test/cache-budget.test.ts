import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdbCache, IdbQueue, MemCache } from '../src/index.js';
import { entryBytes } from '../src/cache/budget.js';
import type { Id, Row } from '../src/types.js';

let dbCount = 0;
let clock = 1_000;
const now = () => clock;
const makers: Array<[string, (budgetBytes: number) => IdbCache | MemCache]> = [
  ['MemCache', (budgetBytes) => new MemCache({ budgetBytes, now })],
  ['IdbCache', (budgetBytes) => new IdbCache(`budget-test-${++dbCount}`, { budgetBytes, now })],
];

/** One entry of about 1,000 bytes. */
function rows(tag: string): Array<[Id, Row]> {
  return [[tag, { id: tag, text: 'x'.repeat(980) }]];
}
const size = entryBytes(rows('t/page_1'));

describe.each(makers)('the budget: %s', (_name, make) => {
  it('measures entries as stored and reports size and budget', async () => {
    const cache = make(100 * size);
    await cache.put('t/page_1', { rows: rows('t/page_1'), fetchedAt: 1 });
    await cache.put('t/page_2', { rows: rows('t/page_2'), fetchedAt: 1 });
    expect(await cache.usage()).toMatchObject({ bytes: 2 * size, entries: 2, budgetBytes: 100 * size, evicted: 0 });
    expect((await cache.inspect('t/')).map((e) => e.bytes)).toEqual([size, size]);
  });

  it('evicts the least recently read unpinned entries past the budget, never pinned ones', async () => {
    const cache = make(4 * size);
    for (const n of [1, 2, 3, 4]) {
      clock++;
      await cache.put(`t/page_${n}`, { rows: rows(`t/page_${n}`), fetchedAt: clock });
    }
    await cache.pin({ id: 't/pin:pages_1-1', keys: ['t/page_1'], label: 'page 1', pinnedAt: clock });
    clock++;
    await cache.get('t/page_2'); // read: now newer than page 3 and 4
    clock++;
    await cache.put('t/page_5', { rows: rows('t/page_5'), fetchedAt: clock });
    // 5 entries, budget 4, evicted down to 90% of it: two go, the least recently read unpinned ones (3, then 4).
    const left = (await cache.inspect('t/')).map((e) => e.key).sort();
    expect(left).toEqual(['t/page_1', 't/page_2', 't/page_5']);
    expect((await cache.usage()).evicted).toBe(2);
    expect((await cache.inspect('t/')).find((e) => e.key === 't/page_1')?.pinned).toBe(true);
  });

  it('keeps pinned entries even when they alone are over the budget', async () => {
    const cache = make(size);
    await cache.pin({ id: 't/pin:all', keys: ['t/page_1', 't/page_2'], label: 'all', pinnedAt: 0 });
    await cache.put('t/page_1', { rows: rows('t/page_1'), fetchedAt: 1 });
    await cache.put('t/page_2', { rows: rows('t/page_2'), fetchedAt: 1 });
    await cache.put('t/page_3', { rows: rows('t/page_3'), fetchedAt: 1 });
    expect((await cache.inspect('t/')).map((e) => e.key).sort()).toEqual(['t/page_1', 't/page_2']);
    await cache.unpin('t/pin:all');
    expect(await cache.pins('t/')).toEqual([]);
    await cache.put('t/page_3', { rows: rows('t/page_3'), fetchedAt: 1 });
    expect((await cache.usage()).bytes).toBeLessThanOrEqual(size);
  });
});

describe('IdbCache under quota pressure', () => {
  afterEach(() => vi.restoreAllMocks());

  it('gives way on QuotaExceededError: evicts, stores, says so, and the write queue still takes a write', async () => {
    const cache = new IdbCache(`budget-test-${++dbCount}`, { budgetBytes: 1000 * size, now });
    const queue = new IdbQueue(`budget-queue-${dbCount}`);
    for (let n = 1; n <= 10; n++) await cache.put(`t/page_${n}`, { rows: rows(`t/page_${n}`), fetchedAt: n });
    await queue.enqueue({ opId: 'op1', table: 't', idempotencyKey: 'k1', enqueuedAt: 1, kind: 'delete', id: 'a' });
    // The browser is out of quota for the next cache entry put: once.
    const put = IDBObjectStore.prototype.put;
    let refusals = 0;
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (this.name === 'entries' && refusals++ === 0) throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    });
    await cache.put('t/page_11', { rows: rows('t/page_11'), fetchedAt: 11 });
    const usage = await cache.usage();
    expect(usage.quotaPressure?.evicted).toBe(5);
    expect(usage.entries).toBe(6);
    expect((await cache.get('t/page_11'))?.rows).toEqual(rows('t/page_11'));
    await queue.enqueue({ opId: 'op2', table: 't', idempotencyKey: 'k2', enqueuedAt: 2, kind: 'delete', id: 'b' });
    expect((await queue.ops('t')).map((op) => op.opId)).toEqual(['op1', 'op2']);
  });

  it('serves a put it cannot store at all without failing: the cache gives way', async () => {
    const cache = new IdbCache(`budget-test-${++dbCount}`, { now });
    await cache.put('t/page_1', { rows: rows('t/page_1'), fetchedAt: 1 });
    vi.spyOn(IDBObjectStore.prototype, 'put').mockImplementation(function () {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    });
    await expect(cache.put('t/page_2', { rows: rows('t/page_2'), fetchedAt: 2 })).resolves.toBeUndefined();
    vi.restoreAllMocks();
    expect(await cache.get('t/page_2')).toBeUndefined();
    expect((await cache.usage()).quotaPressure).toBeDefined();
  });

  it('measures entries kept from a version 2 database when it upgrades', async () => {
    const { openDB } = await import('idb');
    const name = `budget-test-${++dbCount}`;
    const old = await openDB(name, 2, {
      upgrade(db) {
        db.createObjectStore('entries', { keyPath: 'key' });
        db.createObjectStore('generations');
      },
    });
    await old.put('entries', { key: 't/page_1', rows: rows('t/page_1'), fetchedAt: 1 });
    old.close();
    const cache = new IdbCache(name, { now });
    expect(await cache.usage()).toMatchObject({ bytes: size, entries: 1 });
  });
});
