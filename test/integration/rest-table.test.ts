import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTransient, MasterRejectedError, MasterUnavailableError, RestTable } from '../../src/index.js';
import { recordingFetch, TestMaster } from '../support/master.js';

let master: TestMaster;
let net: ReturnType<typeof recordingFetch>;
let products: RestTable;

beforeEach(async () => {
  master = await TestMaster.start();
  await master.seed();
  net = recordingFetch();
  products = new RestTable(master.api, 'products', { fetch: net.fetch });
});

afterEach(async () => {
  await master.dispose();
});

const ids = (rows: Array<[string, unknown]>) => rows.map(([id]) => id);

describe('RestTable reads from the real master', () => {
  it('lists one page as [id, row] pairs in the master order, and an empty page past the end', async () => {
    await master.seed(5); // a, b, c, p000001 .. p000005
    expect(ids(await products.list({ page: 1, ipp: 3 }))).toEqual(['a', 'b', 'c']);
    expect(ids(await products.list({ page: 2, ipp: 3 }))).toEqual(['p000001', 'p000002', 'p000003']);
    expect(ids(await products.list({ page: 3, ipp: 3 }))).toEqual(['p000004', 'p000005']);
    expect(await products.list({ page: 4, ipp: 3 })).toEqual([]);
    const [first] = await products.list({ page: 1, ipp: 1 });
    expect(first).toEqual(['a', { id: 'a', name: 'Apple Pie', price: 12 }]);
    expect(net.requests.map((r) => r.path)).toContain('/api/products?page=2&ipp=3');
  });

  it('lists the whole table across several master pages when no page is asked', async () => {
    await master.seed(2_500);
    const all = await products.list();
    expect(all).toHaveLength(2_503);
    expect(ids(all)).toEqual((await master.rows()).map((r) => r.id));
    expect(ids(all).slice(0, 4)).toEqual(['a', 'b', 'c', 'p000001']);
    expect(all.at(-1)?.[0]).toBe('p002500');
    expect(net.requests.map((r) => r.path)).toEqual([
      '/api/products?page=1&ipp=1000',
      '/api/products?page=2&ipp=1000',
      '/api/products?page=3&ipp=1000',
    ]);
  });

  it('gets one row, and undefined for a row the master answers 404 for', async () => {
    expect(await products.get('b')).toEqual({ id: 'b', name: 'Brioche', price: 8 });
    expect(await products.get('nope')).toBeUndefined();
    expect(net.requests.map((r) => r.status)).toEqual([200, 404]);
  });
});

describe('RestTable writes to the real master', () => {
  it('insert creates the row under the given id', async () => {
    expect(await products.insert('d', { name: 'Donut', price: 3 })).toEqual({ id: 'd', name: 'Donut', price: 3 });
    expect((await master.call('GET', '/products/d')).body).toEqual({ id: 'd', name: 'Donut', price: 3 });
    expect((await master.rows()).map((r) => r.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('insertReturnId returns the id the server assigned to the new row', async () => {
    const id = await products.insertReturnId({ name: 'Eclair', price: 4 });
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect((await master.call('GET', `/products/${id}`)).body).toEqual({ id, name: 'Eclair', price: 4 });
    expect(await master.rows()).toHaveLength(4);
  });

  it('replace overwrites the whole row in place, and creates a row that did not exist', async () => {
    expect(await products.replace('a', { name: 'Apple Tart' })).toEqual({ id: 'a', name: 'Apple Tart' });
    await products.replace('z', { name: 'Zebra Cake', price: 1 });
    expect(await master.rows()).toEqual([
      { id: 'a', name: 'Apple Tart' }, // price gone: a replace, not a merge
      { id: 'b', name: 'Brioche', price: 8 },
      { id: 'c', name: 'Cinnamon Roll', price: 15 },
      { id: 'z', name: 'Zebra Cake', price: 1 },
    ]);
  });

  it('patch changes only the given fields; patching a missing row is refused with 404', async () => {
    expect(await products.patch('b', { price: 9 })).toEqual({ id: 'b', name: 'Brioche', price: 9 });
    expect((await master.call('GET', '/products/b')).body).toEqual({ id: 'b', name: 'Brioche', price: 9 });
    const err = await products.patch('nope', { price: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRejectedError);
    expect(err).toMatchObject({ status: 404, masterCode: 'not_found' });
  });

  it('delete removes the row, and deleting a row that is already gone (404) succeeds', async () => {
    await products.delete('c');
    expect((await master.call('GET', '/products/c')).status).toBe(404);
    await expect(products.delete('c')).resolves.toBeUndefined();
    expect(net.writes().map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(['DELETE /api/products/c 204', 'DELETE /api/products/c 404']);
    expect((await master.rows()).map((r) => r.id)).toEqual(['a', 'b']);
  });

  it('deleteAll empties the table', async () => {
    await products.deleteAll();
    expect(await master.rows()).toEqual([]);
    expect(await products.list({ page: 1, ipp: 10 })).toEqual([]);
  });
});

describe('RestTable turns master failures into typed errors', () => {
  it('a 409 (the id is taken) is a permanent MasterRejectedError with masterCode "conflict"', async () => {
    const err = await products.insert('a', { name: 'Another Apple', price: 1 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRejectedError);
    expect(err).toMatchObject({ status: 409, masterCode: 'conflict', code: 'master_rejected' });
    expect((err as Error).message).toMatch(/already exists/);
    expect(isTransient(err)).toBe(false);
    expect((await master.call('GET', '/products/a')).body).toEqual({ id: 'a', name: 'Apple Pie', price: 12 });
  });

  it.each([
    ['a negative price', -1],
    ['a price that is not a number', 'free'],
  ])('a 422 for %s is a permanent MasterRejectedError and nothing is written', async (_what, price) => {
    const err = await products.insert('d', { name: 'Donut', price }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRejectedError);
    expect(err).toMatchObject({ status: 422, masterCode: 'validation' });
    expect((err as Error).message).toMatch(/price must be a non-negative number/);
    expect(isTransient(err)).toBe(false);
    const patched = await products.patch('a', { price }).catch((e: unknown) => e);
    expect(patched).toMatchObject({ status: 422, masterCode: 'validation' });
    expect(await master.rows()).toHaveLength(3);
    expect((await master.call('GET', '/products/a')).body).toMatchObject({ price: 12 });
    expect((await master.stats()).writes).toBe(0);
  });

  it.each([503, 429])('a %i with Retry-After is a transient MasterUnavailableError carrying retryAfterMs, and nothing is written', async (status) => {
    await master.chaos({ failNext: 1, failStatus: status, retryAfterSec: 1 });
    const err = await products.insert('d', { name: 'Donut', price: 3 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterUnavailableError);
    expect(err).toMatchObject({ status, retryAfterMs: 1_000, transient: true, code: 'master_unavailable' });
    expect(isTransient(err)).toBe(true);
    expect((await master.stats()).writes).toBe(0);
    await products.insert('d', { name: 'Donut', price: 3 }); // the failure was one-off
    expect((await master.rows()).map((r) => r.id)).toEqual(['a', 'b', 'c', 'd']);
  });

  it('a master refusing connections is a transient MasterUnavailableError with no status (a network error)', async () => {
    await master.chaos({ refuseForMs: 60_000 });
    for (const attempt of [() => products.list({ page: 1, ipp: 10 }), () => products.insert('d', { name: 'Donut', price: 3 })]) {
      const err = await attempt().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(MasterUnavailableError);
      expect((err as MasterUnavailableError).status).toBeUndefined();
      expect(isTransient(err)).toBe(true);
    }
    await master.resetChaos();
    expect(ids(await products.list({ page: 1, ipp: 10 }))).toEqual(['a', 'b', 'c']);
    expect((await master.stats()).writes).toBe(0);
  });

  it('a master that answers later than timeoutMs is a transient MasterUnavailableError', async () => {
    await master.chaos({ latencyMs: 1_000 });
    const impatient = new RestTable(master.api, 'products', { timeoutMs: 50 });
    const err = await impatient.get('a').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterUnavailableError);
    expect(isTransient(err)).toBe(true);
  });
});

describe('RestTable and the Idempotency-Key header', () => {
  it('sends the key, and the same key twice writes once and replays the first answer', async () => {
    const first = await products.insertReturnId({ name: 'Eclair', price: 4 }, { idempotencyKey: 'key-1' });
    const again = await products.insertReturnId({ name: 'Eclair', price: 4 }, { idempotencyKey: 'key-1' });
    expect(again).toBe(first);
    expect(net.writes().map((r) => r.idempotencyKey)).toEqual(['key-1', 'key-1']);
    expect(await master.rows()).toHaveLength(4);
    expect(await master.stats()).toMatchObject({ writes: 1, replays: 1 });

    // Without a key (or with another one) the same request is a second write.
    const other = await products.insertReturnId({ name: 'Eclair', price: 4 }, { idempotencyKey: 'key-2' });
    const unkeyed = await products.insertReturnId({ name: 'Eclair', price: 4 });
    expect(new Set([first, other, unkeyed]).size).toBe(3);
    expect(net.writes()[3]?.idempotencyKey).toBeUndefined();
    expect(await master.rows()).toHaveLength(6);
    expect(await master.stats()).toMatchObject({ writes: 3, replays: 1 });
  });

  it('a keyed patch sent twice is applied once', async () => {
    await products.patch('b', { price: 9 }, { idempotencyKey: 'patch-1' });
    await products.patch('b', { name: 'Brioche Loaf' }); // changes the row in between
    const replayed = await products.patch('b', { price: 9 }, { idempotencyKey: 'patch-1' });
    expect(replayed).toEqual({ id: 'b', name: 'Brioche', price: 9 }); // the first answer, replayed
    expect(await master.stats()).toMatchObject({ writes: 2, replays: 1 });
    expect((await master.call('GET', '/products/b')).body).toEqual({ id: 'b', name: 'Brioche Loaf', price: 9 });
  });
});
