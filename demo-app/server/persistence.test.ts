import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { startMaster } from './server.js';
import { call, openSse, sseEvents } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'vantage-master-restart-'));
const dbPath = join(dir, 'master.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const admin = (m: { adminToken: string }) => ({ Authorization: `Bearer ${m.adminToken}` });

it('keeps rows and events across a restart on the same file', async () => {
  const first = await startMaster({ dbPath, seed: true });
  await call(first.url, 'PUT', '/api/products/d', { name: 'Danish', price: 9 });
  const committed = await call(first.url, 'PATCH', '/api/products/a', { price: 13 }, { 'Idempotency-Key': 'k-restart' });
  expect(committed.status).toBe(200);
  const before = (await call(first.url, 'GET', '/admin/stats', undefined, admin(first))).body.events as number;
  await first.close();

  const second = await startMaster({ dbPath });
  try {
    const rows = (await call(second.url, 'GET', '/api/products')).body.rows;
    expect(rows).toEqual([
      { id: 'a', name: 'Apple Pie', price: 13 },
      { id: 'b', name: 'Brioche', price: 8 },
      { id: 'c', name: 'Cinnamon Roll', price: 15 },
      { id: 'd', name: 'Danish', price: 9 },
    ]);
    expect((await call(second.url, 'GET', '/admin/stats', undefined, admin(second))).body.events).toBe(before);

    const replay = await call(second.url, 'PATCH', '/api/products/a', { price: 13 }, { 'Idempotency-Key': 'k-restart' });
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(committed.body);

    const client = await openSse(`${second.url}/api/products/events`, { 'Last-Event-ID': String(before - 2) });
    const frames = await client.frames.until((f) => sseEvents(f).length === 2, 'the two logged changes');
    expect(sseEvents(frames).map((e) => [e.id, e.data.kind, e.data.id])).toEqual([
      [String(before - 1), 'inserted', 'd'],
      [String(before), 'updated', 'a'],
    ]);
    client.close();

    await call(second.url, 'PUT', '/api/products/e', {});
    expect((await call(second.url, 'GET', '/admin/stats', undefined, admin(second))).body.events).toBe(before + 1);
  } finally {
    await second.close();
  }
});

it('close() is idempotent', async () => {
  const master = await startMaster({ dbPath });
  await Promise.all([master.close(), master.close()]);
  await master.close();
});
