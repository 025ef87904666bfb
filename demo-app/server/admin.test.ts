import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, openSse, sseEvents, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;

beforeAll(async () => {
  master = await startTestMaster();
  base = master.url;
});
afterAll(() => master.dispose());

it('hides the chaos routes when chaos is off', async () => {
  expect((await call(base, 'GET', '/admin/chaos')).status).toBe(404);
  expect((await call(base, 'POST', '/admin/chaos', { failNext: 1 })).status).toBe(404);
  expect((await call(base, 'POST', '/admin/chaos/reset')).status).toBe(404);
});

it('counts applied writes and the latest event id', async () => {
  const before = (await call(base, 'GET', '/admin/stats')).body;
  await call(base, 'PUT', '/api/counted/x', {});
  await call(base, 'PUT', '/api/counted/x', { price: -1 });
  const after = (await call(base, 'GET', '/admin/stats')).body;
  expect(after).toEqual({ writes: before.writes + 1, replays: before.replays, events: before.events + 1 });
});

it('reloads a/b/c with POST /admin/seed and announces a changed event', async () => {
  await call(base, 'PUT', '/api/products/zz', { name: 'stray' });
  const client = await openSse(`${base}/api/products/events`);
  const seeded = await call(base, 'POST', '/admin/seed');
  expect(seeded.status).toBe(200);
  const rows = (await call(base, 'GET', '/api/products')).body.rows;
  expect(rows.map((r: { id: string }) => r.id)).toEqual(['a', 'b', 'c']);
  const [event] = sseEvents(await client.frames.until((f) => sseEvents(f).length === 1, 'the seed event'));
  expect(event?.data).toEqual({ eventId: seeded.body.eventId, kind: 'changed' });
  client.close();
});

it('adds generated rows with {"rows": N}', async () => {
  await call(base, 'POST', '/admin/seed', { rows: 20 });
  const list = (await call(base, 'GET', '/api/products?ipp=5')).body;
  expect(list.total).toBe(23);
  expect(list.rows.map((r: { id: string }) => r.id)).toEqual(['a', 'b', 'c', 'p000001', 'p000002']);
});

it('rejects a bad seed body', async () => {
  expect((await call(base, 'POST', '/admin/seed', { rows: -1 })).status).toBe(400);
  expect((await call(base, 'POST', '/admin/seed', '{')).status).toBe(400);
});

it('refuses other methods on admin routes with 405', async () => {
  expect((await call(base, 'POST', '/admin/stats')).status).toBe(405);
  expect((await call(base, 'GET', '/admin/seed')).status).toBe(405);
});
