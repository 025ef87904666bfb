import { request } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { call, STORAGES, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  let master: TestMaster;
  let base: string;

  async function stats(): Promise<{ writes: number; replays: number; events: number }> {
    return (await call(base, 'GET', '/admin/stats')).body;
  }

  /** A keyed PUT sent from another loopback address (Linux routes all of 127/8 to lo). */
  function putFrom(url: string, localAddress: string, path: string, key: string): Promise<{ status: number; replayed: boolean }> {
    return new Promise((resolve, reject) => {
      const req = request(url, { method: 'PUT', path, localAddress, headers: { 'Idempotency-Key': key, 'Content-Type': 'application/json' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, replayed: res.headers['idempotent-replayed'] === 'true' }));
      });
      req.on('error', reject);
      req.end('{}');
    });
  }

  beforeAll(async () => {
    master = await startTestMaster({ storage, chaos: true });
    base = master.url;
  });
  beforeEach(() => call(base, 'POST', '/admin/chaos/reset'));
  afterAll(() => master.dispose());

  it('applies a repeated key once and replays the stored response', async () => {
    const before = await stats();
    const key = { 'Idempotency-Key': 'create-1' };
    const first = await call(base, 'POST', '/api/idem', { name: 'once' }, key);
    const second = await call(base, 'POST', '/api/idem', { name: 'once' }, key);
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(second.status).toBe(201);
    expect(second.body).toEqual(first.body);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect((await call(base, 'GET', '/api/idem')).body.total).toBe(1);
    const after = await stats();
    expect(after.writes - before.writes).toBe(1);
    expect(after.replays - before.replays).toBe(1);
    expect(after.events - before.events).toBe(1);
  });

  // Postgres sends a write's statements several in one round trip, with the values as escaped literals.
  it('stores and replays keys and bodies holding quotes, backslashes and dollar signs exactly', async () => {
    const key = { 'Idempotency-Key': "k'ey\\$1$$--" };
    const body = { note: "it's a \\ back'slash $1 $$ -- ; DROP TABLE rows; \\'", nested: { q: '"' } };
    const first = await call(base, 'PUT', '/api/quoted/q1', body, key);
    const replay = await call(base, 'PUT', '/api/quoted/q1', body, key);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ id: 'q1', ...body });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    expect((await call(base, 'GET', '/api/quoted/q1')).body).toEqual({ id: 'q1', ...body });
    // The same key with another body is still told apart.
    expect((await call(base, 'PUT', '/api/quoted/q1', { note: 'other' }, key)).status).toBe(422);
  });

  it('replays a bodiless 204 as a 204', async () => {
    await call(base, 'PUT', '/api/idem_del/x', {});
    const key = { 'Idempotency-Key': 'delete-1' };
    expect((await call(base, 'DELETE', '/api/idem_del/x', undefined, key)).status).toBe(204);
    const again = await call(base, 'DELETE', '/api/idem_del/x', undefined, key);
    expect(again.status).toBe(204);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  it('replays a PATCH without applying it again', async () => {
    await call(base, 'PUT', '/api/idem_patch/x', { n: 1 });
    const key = { 'Idempotency-Key': 'patch-1' };
    await call(base, 'PATCH', '/api/idem_patch/x', { n: 2 }, key);
    await call(base, 'PUT', '/api/idem_patch/x', { n: 3 });
    const replay = await call(base, 'PATCH', '/api/idem_patch/x', { n: 2 }, key);
    expect(replay.body).toEqual({ id: 'x', n: 2 });
    expect((await call(base, 'GET', '/api/idem_patch/x')).body).toEqual({ id: 'x', n: 3 });
  });

  it('replays a dropped-after-commit write once', async () => {
    const before = await stats();
    await call(base, 'POST', '/admin/chaos', { dropAfterCommit: 1 });
    const key = { 'Idempotency-Key': 'dropped-1' };
    await expect(call(base, 'POST', '/api/idem_drop', { id: 'd1', price: 3 }, key)).rejects.toThrow();

    const retry = await call(base, 'POST', '/api/idem_drop', { id: 'd1', price: 3 }, key);
    expect(retry.status).toBe(201);
    expect(retry.body).toEqual({ id: 'd1', price: 3 });
    expect(retry.headers.get('idempotent-replayed')).toBe('true');

    const after = await stats();
    expect(after.writes - before.writes).toBe(1);
    expect(after.replays - before.replays).toBe(1);
    expect(after.events - before.events).toBe(1);
    expect((await call(base, 'GET', '/api/idem_drop')).body.rows).toEqual([{ id: 'd1', price: 3 }]);
  });

  it('without a key, a retried insert after a drop is a conflict', async () => {
    await call(base, 'POST', '/admin/chaos', { dropAfterCommit: 1 });
    await expect(call(base, 'POST', '/api/idem_nokey', { id: 'n1' })).rejects.toThrow();
    expect((await call(base, 'POST', '/api/idem_nokey', { id: 'n1' })).status).toBe(409);
  });

  it('does not store rejections: a corrected retry with the same key applies', async () => {
    const key = { 'Idempotency-Key': 'rejected-1' };
    const rejected = await call(base, 'POST', '/api/idem_rej', { id: 'r', price: -5 }, key);
    expect(rejected.status).toBe(422);
    expect((await call(base, 'GET', '/api/idem_rej')).body.total).toBe(0);
    const fixed = await call(base, 'POST', '/api/idem_rej', { id: 'r', price: 5 }, key);
    expect(fixed.status).toBe(201);
    expect(fixed.headers.get('idempotent-replayed')).toBeNull();
  });

  it('refuses a key reused for another request with 422, applying nothing', async () => {
    const key = { 'Idempotency-Key': 'shared-key' };
    expect((await call(base, 'PUT', '/api/idem_scope/one', { v: 1 }, key)).status).toBe(200);
    const before = await stats();
    for (const [method, path, body] of [
      ['PUT', '/api/idem_scope/one', { v: 2 }],
      ['PUT', '/api/idem_scope/two', { v: 1 }],
      ['PATCH', '/api/idem_scope/one', { v: 1 }],
      ['DELETE', '/api/idem_scope/one', undefined],
      ['POST', '/api/idem_scope', { id: 'three', v: 1 }],
    ] as const) {
      const res = await call(base, method, path, body, key);
      expect(res.status, `${method} ${path}`).toBe(422);
      expect(res.body.error.code).toBe('idempotency_key_reused');
    }
    expect((await call(base, 'GET', '/api/idem_scope')).body.rows).toEqual([{ id: 'one', v: 1 }]);
    expect(await stats()).toEqual(before);
    // The same request again is still a replay.
    expect((await call(base, 'PUT', '/api/idem_scope/one', { v: 1 }, key)).headers.get('idempotent-replayed')).toBe('true');
  });

  it('treats two spellings of the same request as the same request', async () => {
    const key = { 'Idempotency-Key': 'spelling-1' };
    await call(base, 'PUT', '/api/idem_spell/a', '{"v":1}', key);
    const again = await call(base, 'PUT', '/api/idem_spell/%61', '{ "v" : 1 }', key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
  });

  describe('what a key keeps', () => {
    const big = 'x'.repeat(100_000);

    it('keeps a small answer whole, and only the id of a large row', async () => {
      const roomy = await startTestMaster({ storage, maxBodyBytes: 1024 * 1024 });
      try {
        await call(roomy.url, 'PUT', '/api/big/r', { big });
        for (let i = 0; i < 20; i++) {
          const res = await call(roomy.url, 'PATCH', '/api/big/r', { n: i }, { 'Idempotency-Key': `big-${i}` });
          expect(res.status).toBe(200);
        }
        await call(roomy.url, 'PATCH', '/api/big/small', {}, { 'Idempotency-Key': 'small-404' });
        await call(roomy.url, 'PUT', '/api/big/s', { n: 1 }, { 'Idempotency-Key': 'small-1' });
        const kept = await roomy.keptKeys();
        expect(kept.keys).toBe(21);
        expect(kept.bodyBytes).toBeLessThan(100);
      } finally {
        await roomy.dispose();
      }
    });

    it('replays a large row with its status and id, re-read from the table', async () => {
      const roomy = await startTestMaster({ storage, maxBodyBytes: 1024 * 1024 });
      try {
        const key = { 'Idempotency-Key': 'big-post' };
        const first = await call(roomy.url, 'POST', '/api/big', { id: 'p', big }, key);
        expect(first.status).toBe(201);
        const replay = await call(roomy.url, 'POST', '/api/big', { id: 'p', big }, key);
        expect(replay.status).toBe(201);
        expect(replay.headers.get('idempotent-replayed')).toBe('true');
        expect(replay.body).toEqual(first.body);

        await call(roomy.url, 'DELETE', '/api/big/p');
        const afterDelete = await call(roomy.url, 'POST', '/api/big', { id: 'p', big }, key);
        expect(afterDelete.status).toBe(201);
        expect(afterDelete.body).toEqual({ id: 'p' });
        expect((await call(roomy.url, 'GET', '/api/big')).body.total).toBe(0);
      } finally {
        await roomy.dispose();
      }
    });

    it('keeps at most idempotencyMaxKeysPerClient per client address and idempotencyMaxKeys in all, oldest out first', async () => {
      const small = await startTestMaster({ storage, idempotencyMaxKeysPerClient: 3, idempotencyMaxKeys: 5 });
      try {
        const put = (from: string, n: number) => putFrom(small.url, from, `/api/bounded/${from}-${n}`, `key-${from}-${n}`);
        for (let n = 1; n <= 4; n++) expect((await put('127.0.0.2', n)).replayed).toBe(false);
        expect((await small.keptKeys()).keys).toBe(3);
        // The oldest key of that client is gone: its request applies again (200, not a replay).
        expect((await put('127.0.0.2', 1)).replayed).toBe(false);
        expect((await put('127.0.0.2', 4)).replayed).toBe(true);

        for (let n = 1; n <= 3; n++) await put('127.0.0.3', n);
        expect((await small.keptKeys()).keys).toBe(5);
        expect((await put('127.0.0.3', 3)).replayed).toBe(true);
      } finally {
        await small.dispose();
      }
    });
  });

  it('rejects a malformed key', async () => {
    const res = await call(base, 'PUT', '/api/idem_bad/x', {}, { 'Idempotency-Key': 'k'.repeat(256) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_idempotency_key');
  });

  it('forgets keys after idempotencyTtlMs', async () => {
    const short = await startTestMaster({ storage, idempotencyTtlMs: 1 });
    try {
      const key = { 'Idempotency-Key': 'expiring' };
      await call(short.url, 'PUT', '/api/ttl/x', { v: 1 }, key);
      const start = Date.now();
      // The TTL is 1 ms: the clock only has to tick once.
      while (Date.now() - start < 2) await new Promise((r) => setImmediate(r));
      const again = await call(short.url, 'PUT', '/api/ttl/x', { v: 1 }, key);
      expect(again.headers.get('idempotent-replayed')).toBeNull();
    } finally {
      await short.dispose();
    }
  });
});
