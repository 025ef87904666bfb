import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { idProblem } from '../../src/ids.js';
import { call, STORAGES, startTestMaster } from './testkit.js';
import type { Reply, TestMaster } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  let master: TestMaster;
  let base: string;

  beforeAll(async () => {
    master = await startTestMaster({ storage, seed: true, maxBodyBytes: 1024 });
    base = master.url;
  });
  afterAll(() => master.dispose());

  /** A request whose path goes out exactly as written (fetch would resolve `.` and `..`). */
  function rawRequest(url: string, method: string, path: string): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method, path }, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: new Headers(), body: text === '' ? undefined : JSON.parse(text) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

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
      expect(idProblem(created.body.id)).toBeUndefined();
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

  describe('ids', () => {
    // Every one passes the id rule; each must round-trip through a percent-encoded path.
    const ids = ['a b', 'ünïcødé', '日本語', '😀 emoji', 'a%20b', '100%', 'dots.in.the.middle', '...', '.hidden', "q'uote\"s", 'a?b#c&d=e', '+plus', 'x'.repeat(256), 'back\\slash'];

    it('accepts every id the id rule accepts, percent-decoded from the path', async () => {
      for (const id of ids) {
        expect(idProblem(id), id).toBeUndefined();
        const path = `/api/any_ids/${encodeURIComponent(id)}`;
        expect((await call(base, 'PUT', path, { v: 1 })).body, id).toEqual({ id, v: 1 });
        expect((await call(base, 'PATCH', path, { v: 2 })).body, id).toEqual({ id, v: 2 });
        expect((await call(base, 'GET', path)).body, id).toEqual({ id, v: 2 });
      }
      const listed = (await call(base, 'GET', '/api/any_ids?ipp=100')).body.rows.map((r: { id: string }) => r.id);
      expect(listed).toEqual(ids);
      for (const id of ids) expect((await call(base, 'DELETE', `/api/any_ids/${encodeURIComponent(id)}`)).status, id).toBe(204);
    });

    it('accepts such ids in a POST body too', async () => {
      expect((await call(base, 'POST', '/api/post_ids', { id: '日本 語' })).status).toBe(201);
      expect((await call(base, 'GET', `/api/post_ids/${encodeURIComponent('日本 語')}`)).body).toEqual({ id: '日本 語' });
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

    it('rejects ids the id rule refuses, in the URL and the body', async () => {
      for (const path of [`/api/products/${'x'.repeat(257)}`, '/api/products/no%2Fslash', '/api/products/tab%09', '/api/products/nul%00']) {
        await expectUnchanged('products', () => call(base, 'PUT', path, {}), 400, 'invalid_id');
      }
      // A lone surrogate cannot be percent-encoded at all: what comes close is malformed UTF-8.
      await expectUnchanged('products', () => call(base, 'PUT', '/api/products/lone%ED%A0%80', {}), 400, 'bad_request');
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 'no/slash' }), 400, 'invalid_id');
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: 7 }), 400, 'invalid_id');
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: '' }), 400, 'invalid_id');
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: '..' }), 400, 'invalid_id');
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', { id: '\ud800' }), 400, 'invalid_id');
    });

    it('never acts on the collection for a dot segment or a trailing slash', async () => {
      // fetch would normalise these away, so they go out raw.
      for (const path of ['/api/products/.', '/api/products/..', '/api/products/%2e', '/api/products/%2E%2e', '/api/products/']) {
        await expectUnchanged('products', () => rawRequest(base, 'DELETE', path), 400, 'invalid_id');
        await expectUnchanged('products', () => rawRequest(base, 'GET', path), 400, 'invalid_id');
      }
    });

    it('refuses JSON nested deeper than 32 levels with 400, not a crash', async () => {
      const deep = (n: number) => `{"id":"deep","v":${'['.repeat(n)}${']'.repeat(n)}}`;
      const roomy = await startTestMaster({ storage });
      try {
        // Deep enough to overflow the stack of any recursive walk over the value.
        const res = await call(roomy.url, 'POST', '/api/products', deep(200_000));
        expect(res.status).toBe(400);
        expect(res.body.error.code).toBe('too_deep');
      } finally {
        await roomy.dispose();
      }
      await expectUnchanged('products', () => call(base, 'POST', '/api/products', deep(32)), 400, 'too_deep');
      expect((await call(base, 'PUT', '/api/nesting/ok', `{"v":${'['.repeat(31)}${']'.repeat(31)}}`)).status).toBe(200);
      expect((await call(base, 'PUT', '/api/nesting/brackets_in_strings', { v: '[[[['.repeat(20) })).status).toBe(200);
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
});
