import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;

beforeAll(async () => {
  master = await startTestMaster({ seed: true, maxBodyBytes: 1024 });
  base = master.url;
});
afterAll(() => master.dispose());

describe('reads', () => {
  it('lists the seeded products in insertion order', async () => {
    const res = await call(base, 'GET', '/api/products');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.body).toEqual({
      rows: [
        { id: 'a', name: 'Apple Pie', price: 12 },
        { id: 'b', name: 'Brioche', price: 8 },
        { id: 'c', name: 'Cinnamon Roll', price: 15 },
      ],
      page: 1,
      ipp: 50,
      total: 3,
    });
  });

  it('lists an unknown table as empty', async () => {
    const res = await call(base, 'GET', '/api/never_written');
    expect(res.body).toEqual({ rows: [], page: 1, ipp: 50, total: 0 });
  });

  it('gets one row, or 404', async () => {
    expect((await call(base, 'GET', '/api/products/b')).body).toEqual({ id: 'b', name: 'Brioche', price: 8 });
    const missing = await call(base, 'GET', '/api/products/zzz');
    expect(missing.status).toBe(404);
    expect(missing.body.error.code).toBe('not_found');
  });
});

describe('writes', () => {
  it('inserts with a given id, then refuses it again with 409', async () => {
    const created = await call(base, 'POST', '/api/post_given', { id: 'x1', name: 'X' });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ id: 'x1', name: 'X' });
    const again = await call(base, 'POST', '/api/post_given', { id: 'x1', name: 'other' });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe('conflict');
    expect((await call(base, 'GET', '/api/post_given/x1')).body).toEqual({ id: 'x1', name: 'X' });
  });

  it('assigns an id when the body has none', async () => {
    const created = await call(base, 'POST', '/api/post_assigned', { name: 'no id' });
    expect(created.status).toBe(201);
    expect(created.body.id).toMatch(/^[A-Za-z0-9_.:-]{1,128}$/);
    expect((await call(base, 'GET', `/api/post_assigned/${created.body.id}`)).body).toEqual(created.body);
  });

  it('creates with PUT, and a replace keeps the row in place', async () => {
    for (const id of ['r1', 'r2', 'r3']) await call(base, 'PUT', `/api/put_order/${id}`, { v: 1 });
    const replaced = await call(base, 'PUT', '/api/put_order/r1', { v: 2 });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toEqual({ id: 'r1', v: 2 });
    const list = await call(base, 'GET', '/api/put_order');
    expect(list.body.rows).toEqual([
      { id: 'r1', v: 2 },
      { id: 'r2', v: 1 },
      { id: 'r3', v: 1 },
    ]);
  });

  it('merges a PATCH shallowly, or 404s for a missing row', async () => {
    await call(base, 'PUT', '/api/patching/p', { name: 'n', tags: ['a'], price: 1 });
    const patched = await call(base, 'PATCH', '/api/patching/p', { price: 2, tags: ['b'] });
    expect(patched.status).toBe(200);
    expect(patched.body).toEqual({ id: 'p', name: 'n', tags: ['b'], price: 2 });
    const missing = await call(base, 'PATCH', '/api/patching/nope', { price: 2 });
    expect(missing.status).toBe(404);
    expect((await call(base, 'GET', '/api/patching/nope')).status).toBe(404);
  });

  it('deletes one row, then 404s', async () => {
    await call(base, 'PUT', '/api/deleting/d', { v: 1 });
    const deleted = await call(base, 'DELETE', '/api/deleting/d');
    expect(deleted.status).toBe(204);
    expect(deleted.body).toBeUndefined();
    expect((await call(base, 'DELETE', '/api/deleting/d')).status).toBe(404);
  });

  it('deletes a whole table', async () => {
    await call(base, 'PUT', '/api/clearing/1', {});
    await call(base, 'PUT', '/api/clearing/2', {});
    expect((await call(base, 'DELETE', '/api/clearing')).status).toBe(204);
    expect((await call(base, 'GET', '/api/clearing')).body.total).toBe(0);
  });

  it('re-inserting a deleted id puts it at the end', async () => {
    for (const id of ['a', 'b']) await call(base, 'PUT', `/api/reinsert/${id}`, {});
    await call(base, 'DELETE', '/api/reinsert/a');
    await call(base, 'PUT', '/api/reinsert/a', {});
    const ids = (await call(base, 'GET', '/api/reinsert')).body.rows.map((r: { id: string }) => r.id);
    expect(ids).toEqual(['b', 'a']);
  });
});

describe('methods', () => {
  it('answers OPTIONS with Allow', async () => {
    const collection = await call(base, 'OPTIONS', '/api/products');
    expect(collection.status).toBe(204);
    expect(collection.headers.get('allow')).toBe('GET, POST, DELETE, OPTIONS');
    const row = await call(base, 'OPTIONS', '/api/products/a');
    expect(row.headers.get('allow')).toBe('GET, PUT, PATCH, DELETE, OPTIONS');
  });

  it('refuses other methods with 405 and the error shape', async () => {
    for (const [method, path] of [
      ['PUT', '/api/products'],
      ['PATCH', '/api/products'],
      ['POST', '/api/products/a'],
    ] as const) {
      const res = await call(base, method, path, {});
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.body.error.code).toBe('method_not_allowed');
      expect(res.headers.get('allow')).toBeTruthy();
    }
  });

  it('404s unknown routes', async () => {
    for (const path of ['/', '/nothing', '/api', '/api/products/a/extra', '/admin/unknown']) {
      const res = await call(base, 'GET', path);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
  });

  it('asks for an upgrade on a plain GET of the WebSocket route', async () => {
    expect((await call(base, 'GET', '/api/products/ws')).status).toBe(426);
  });
});

describe('bad input changes nothing', () => {
  async function expectUnchanged(table: string, run: () => Promise<{ status: number; body: any }>, status: number, code: string) {
    const before = await call(base, 'GET', `/api/${table}`);
    const statsBefore = await call(base, 'GET', '/admin/stats');
    const res = await run();
    expect(res.status).toBe(status);
    expect(res.body).toEqual({ error: { code, message: expect.any(String) } });
    expect((await call(base, 'GET', `/api/${table}`)).body).toEqual(before.body);
    expect((await call(base, 'GET', '/admin/stats')).body).toEqual(statsBefore.body);
  }

  it('rejects invalid JSON', () =>
    expectUnchanged('products', () => call(base, 'POST', '/api/products', '{"id": "q",'), 400, 'invalid_json'));

  it('rejects an empty body on a write that needs one', () =>
    expectUnchanged('products', () => call(base, 'PUT', '/api/products/a', ''), 400, 'invalid_json'));

  it('rejects a body that is not an object', async () => {
    for (const body of ['[1,2]', '"text"', '42', 'null']) {
      await expectUnchanged('products', () => call(base, 'PUT', '/api/products/a', body), 400, 'invalid_body');
    }
  });

  it('rejects bad ids in the URL and the body', async () => {
    await expectUnchanged('products', () => call(base, 'PUT', '/api/products/has%20space', {}), 400, 'invalid_id');
    await expectUnchanged('products', () => call(base, 'GET', `/api/products/${'x'.repeat(129)}`), 400, 'invalid_id');
    await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 'no/slash' }), 400, 'invalid_id');
    await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 7 }), 400, 'invalid_id');
  });

  it('rejects bad table names', async () => {
    await expectUnchanged('products', () => call(base, 'GET', '/api/bad.table'), 400, 'invalid_table');
    await expectUnchanged('products', () => call(base, 'POST', `/api/${'t'.repeat(65)}`, {}), 400, 'invalid_table');
  });

  it('rejects a body id that contradicts the URL', async () => {
    await expectUnchanged('products', () => call(base, 'PUT', '/api/products/a', { id: 'b', name: 'x' }), 400, 'id_mismatch');
    await expectUnchanged('products', () => call(base, 'PATCH', '/api/products/a', { id: 'b' }), 400, 'id_mismatch');
  });

  it('rejects a body over maxBodyBytes with 413', () =>
    expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 'big', pad: 'x'.repeat(2000) }), 413, 'too_large'));

  it('rejects a bad price with 422 on every kind of write', async () => {
    await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 'neg', price: -1 }), 422, 'validation');
    await expectUnchanged('products', () => call(base, 'PUT', '/api/products/a', { price: '12' }), 422, 'validation');
    await expectUnchanged('products', () => call(base, 'PATCH', '/api/products/a', { price: null }), 422, 'validation');
  });

  it('accepts a price of zero and rows without a price', async () => {
    expect((await call(base, 'PUT', '/api/prices/free', { price: 0 })).status).toBe(200);
    expect((await call(base, 'PUT', '/api/prices/none', { name: 'n' })).status).toBe(200);
  });
});
