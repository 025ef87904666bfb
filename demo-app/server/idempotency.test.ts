import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { call, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;

async function stats(): Promise<{ writes: number; replays: number; events: number }> {
  return (await call(base, 'GET', '/admin/stats')).body;
}

beforeAll(async () => {
  master = await startTestMaster({ chaos: true });
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

it('scopes keys by request: the same key on another row applies', async () => {
  const key = { 'Idempotency-Key': 'shared-key' };
  await call(base, 'PUT', '/api/idem_scope/one', { v: 1 }, key);
  const other = await call(base, 'PUT', '/api/idem_scope/two', { v: 2 }, key);
  expect(other.headers.get('idempotent-replayed')).toBeNull();
  expect((await call(base, 'GET', '/api/idem_scope')).body.total).toBe(2);
});

it('rejects a malformed key', async () => {
  const res = await call(base, 'PUT', '/api/idem_bad/x', {}, { 'Idempotency-Key': 'k'.repeat(256) });
  expect(res.status).toBe(400);
  expect(res.body.error.code).toBe('invalid_idempotency_key');
});

it('forgets keys after idempotencyTtlMs', async () => {
  const short = await startTestMaster({ idempotencyTtlMs: 1 });
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
