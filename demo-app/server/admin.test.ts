import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSse, sseEvents, startTestMaster } from './testkit.js';
import type { SseFrame, TestMaster } from './testkit.js';

let plain: TestMaster;
let master: TestMaster;
let base: string;

beforeAll(async () => {
  plain = await startTestMaster();
  master = await startTestMaster({ chaos: true });
  base = master.url;
});
afterAll(async () => {
  await plain.dispose();
  await master.dispose();
});

it('hides the chaos and seed routes when chaos is off', async () => {
  expect((await call(plain.url, 'GET', '/admin/chaos')).status).toBe(404);
  expect((await call(plain.url, 'POST', '/admin/chaos', { failNext: 1 })).status).toBe(404);
  expect((await call(plain.url, 'POST', '/admin/chaos/reset')).status).toBe(404);
  expect((await call(plain.url, 'POST', '/admin/seed')).status).toBe(404);
});

describe('the admin token', () => {
  const noToken = { Authorization: '' };

  it('refuses /admin without the token, with 401', async () => {
    for (const m of [plain, master]) {
      const res = await call(m.url, 'GET', '/admin/stats', undefined, noToken);
      expect(res.status).toBe(401);
      expect(res.body.error.code).toBe('admin_token_required');
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await call(m.url, 'GET', '/admin/stats', undefined, { Authorization: 'Bearer wrong' })).status).toBe(401);
    }
    expect((await call(base, 'POST', '/admin/chaos', { failNext: 5 }, noToken)).status).toBe(401);
    expect((await call(base, 'GET', '/admin/chaos')).body.failNext).toBe(0);
  });

  it('accepts the token startMaster returns, or one given in the options', async () => {
    expect((await call(plain.url, 'GET', '/admin/stats', undefined, { Authorization: `Bearer ${plain.adminToken}` })).status).toBe(200);
    const given = await startTestMaster({ adminToken: 'given-token-123' });
    try {
      expect(given.adminToken).toBe('given-token-123');
      expect((await call(given.url, 'GET', '/admin/stats', undefined, { Authorization: 'Bearer given-token-123' })).status).toBe(200);
    } finally {
      await given.dispose();
    }
  });

  it('lets same-origin pages in without the token only in chaos mode', async () => {
    const samePage = { ...noToken, 'Sec-Fetch-Site': 'same-origin' };
    expect((await call(base, 'GET', '/admin/chaos', undefined, samePage)).status).toBe(200);
    expect((await call(plain.url, 'GET', '/admin/stats', undefined, samePage)).status).toBe(401);
    expect((await call(base, 'GET', '/admin/chaos', undefined, { ...noToken, 'Sec-Fetch-Site': 'cross-site' })).status).toBe(401);
  });
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
  const changes = (f: SseFrame[]) => sseEvents(f).filter((e) => e.event === 'change');
  const [event] = changes(await client.frames.until((f) => changes(f).length === 1, 'the seed event'));
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
