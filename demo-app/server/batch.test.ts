import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, STORAGES, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';
import { MAX_BATCH_OPS } from './api.js';

describe.each(STORAGES)('batches on %s', (storage) => {
  let master: TestMaster;
  let base: string;

  beforeAll(async () => {
    master = await startTestMaster({ storage, chaos: true });
    base = master.url;
  });
  afterAll(() => master.dispose());

  const batch = (table: string, ops: unknown[]) => call(base, 'POST', `/api/${table}/_batch`, { ops });

  it('is advertised on list answers and the collection\'s OPTIONS', async () => {
    expect((await call(base, 'GET', '/api/b_adv')).headers.get('vantage-batch')).toBe(String(MAX_BATCH_OPS));
    expect((await call(base, 'OPTIONS', '/api/b_adv')).headers.get('vantage-batch')).toBe(String(MAX_BATCH_OPS));
  });

  it('applies ops in order, each answered as its own request would be', async () => {
    const reply = await batch('b_order', [
      { method: 'POST', body: { id: 'a', n: 1 }, key: 'b-order-1' },
      { method: 'PUT', id: 'b', body: { n: 2 }, key: 'b-order-2' },
      { method: 'PATCH', id: 'a', body: { n: 3 }, key: 'b-order-3' },
      { method: 'DELETE', id: 'b', key: 'b-order-4' },
    ]);
    expect(reply.status).toBe(200);
    const results = reply.body.results as Array<{ status: number; body: Record<string, unknown> | null }>;
    expect(results.map((r) => r.status)).toEqual([201, 200, 200, 204]);
    expect(results[2]!.body).toMatchObject({ id: 'a', n: 3 });
    expect(results[2]!.body!._version).toBeGreaterThan(results[0]!.body!._version as number);
    const list = await call(base, 'GET', '/api/b_order');
    expect(list.body.rows).toEqual([{ id: 'a', n: 3, _version: results[2]!.body!._version }]);
  });

  it('a refused op in the middle is answered alone; the others apply, later ops on its row too', async () => {
    const v = (await call(base, 'PUT', '/api/b_refuse/r', { n: 0 })).body._version as number;
    const reply = await batch('b_refuse', [
      { method: 'PUT', id: 'x', body: { n: 1 }, key: 'b-ref-1' },
      { method: 'PATCH', id: 'r', body: { n: 2 }, key: 'b-ref-2', ifMatch: `"${v + 1000}"` },
      { method: 'PATCH', id: 'gone', body: { n: 3 }, key: 'b-ref-3' },
      { method: 'PATCH', id: 'r', body: { m: 4 }, key: 'b-ref-4' },
      { method: 'GET', id: 'r' },
    ]);
    const results = reply.body.results as Array<{ status: number; body: { error?: { code: string }; row?: unknown } }>;
    expect(results.map((r) => r.status)).toEqual([200, 412, 404, 200, 400]);
    expect(results[1]!.body.error!.code).toBe('precondition_failed');
    expect(results[1]!.body.row).toMatchObject({ id: 'r', n: 0, _version: v });
    expect((await call(base, 'GET', '/api/b_refuse/r')).body).toMatchObject({ n: 0, m: 4 });
    expect((await call(base, 'GET', '/api/b_refuse/x')).body).toMatchObject({ n: 1 });
  });

  it('a batch resent after its answer was lost replays every key, applying nothing twice', async () => {
    const ops = Array.from({ length: 20 }, (_, i) => ({ method: 'POST', body: { id: `r${i}`, i }, key: `b-lost-${i}` }));
    await call(base, 'POST', '/admin/chaos', { dropAfterCommit: 1 });
    await expect(batch('b_lost', ops)).rejects.toThrow();
    const before = (await call(base, 'GET', '/admin/stats')).body;
    const again = await batch('b_lost', ops);
    const results = again.body.results as Array<{ status: number; replayed?: boolean }>;
    expect(results.every((r) => r.status === 201 && r.replayed === true)).toBe(true);
    const after = (await call(base, 'GET', '/admin/stats')).body;
    expect(after.writes - before.writes).toBe(0);
    expect(after.replays - before.replays).toBe(20);
    expect((await call(base, 'GET', '/api/b_lost?ipp=100')).body.total).toBe(20);
  });

  it('a key first sent alone is replayed in a batch, and one reused for another write is refused there', async () => {
    const first = await call(base, 'POST', '/api/b_mixed', { id: 'm', n: 1 }, { 'Idempotency-Key': 'b-mixed-1' });
    const reply = await batch('b_mixed', [
      { method: 'POST', body: { id: 'm', n: 1 }, key: 'b-mixed-1' },
      { method: 'POST', body: { id: 'm2', n: 1 }, key: 'b-mixed-1' },
    ]);
    const results = reply.body.results as Array<{ status: number; body: { error?: { code: string } } }>;
    expect(results[0]).toEqual({ status: 201, body: first.body, replayed: true });
    expect(results[1]!.status).toBe(422);
  });

  it('refuses a malformed batch whole', async () => {
    expect((await call(base, 'POST', '/api/b_bad/_batch', { ops: [] })).status).toBe(400);
    expect((await call(base, 'POST', '/api/b_bad/_batch', { nope: 1 })).status).toBe(400);
    const tooMany = Array.from({ length: MAX_BATCH_OPS + 1 }, (_, i) => ({ method: 'PUT', id: `r${i}`, body: {} }));
    expect((await batch('b_bad', tooMany)).status).toBe(400);
    expect((await call(base, 'GET', '/api/b_bad')).body.total).toBe(0);
  });
});

describe('a master without batches', () => {
  let master: TestMaster;
  beforeAll(async () => {
    master = await startTestMaster({ batches: false });
  });
  afterAll(() => master.dispose());

  it('answers a batch as a master from before them (405) and does not advertise them', async () => {
    expect((await call(master.url, 'POST', '/api/t/_batch', { ops: [{ method: 'PUT', id: 'a', body: {} }] })).status).toBe(405);
    expect((await call(master.url, 'GET', '/api/t')).headers.get('vantage-batch')).toBeNull();
    expect((await call(master.url, 'GET', '/api/t')).body.total).toBe(0);
  });
});
