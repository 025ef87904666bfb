import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { call, openSse, openWs, sseEvents, startTestMaster, wsUrl } from './testkit.js';
import type { SseFrame } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;

const chaos = (settings: object) => call(base, 'POST', '/admin/chaos', settings);

beforeAll(async () => {
  master = await startTestMaster({ chaos: true, heartbeatMs: 50 });
  base = master.url;
});
beforeEach(() => call(base, 'POST', '/admin/chaos/reset'));
afterAll(() => master.dispose());

it('reports, updates and resets the chaos state', async () => {
  const initial = await call(base, 'GET', '/admin/chaos');
  expect(initial.body).toEqual({
    latencyMs: 0,
    failNext: 0,
    failOnlyWrites: false,
    failStatus: 503,
    retryAfterSec: 1,
    dropAfterCommit: 0,
    pauseFeed: false,
    refuseForMs: 0,
  });
  const updated = await chaos({ latencyMs: 5, failNext: 2, failStatus: 500, retryAfterSec: 3 });
  expect(updated.body).toMatchObject({ latencyMs: 5, failNext: 2, failStatus: 500, retryAfterSec: 3 });
  const reset = await call(base, 'POST', '/admin/chaos/reset');
  expect(reset.body).toEqual(initial.body);
});

it('rejects bad chaos settings without applying any of them', async () => {
  for (const body of [{ latencyMs: -1 }, { failNext: 1.5 }, { failStatus: 200 }, { pauseFeed: 'yes' }, { nonsense: 1 }, [1]]) {
    const res = await chaos(body);
    expect(res.status, JSON.stringify(body)).toBe(400);
  }
  expect((await chaos({ latencyMs: 7, failNext: 'x' })).status).toBe(400);
  expect((await call(base, 'GET', '/admin/chaos')).body.latencyMs).toBe(0);
});

it('adds latency to /api requests', async () => {
  await chaos({ latencyMs: 150 });
  const start = performance.now();
  expect((await call(base, 'GET', '/api/slow')).status).toBe(200);
  expect(performance.now() - start).toBeGreaterThanOrEqual(140);
});

it('fails the next N requests with Retry-After, applying nothing', async () => {
  await chaos({ failNext: 2, retryAfterSec: 2 });
  const read = await call(base, 'GET', '/api/flaky');
  expect(read.status).toBe(503);
  expect(read.headers.get('retry-after')).toBe('2');
  expect(read.body.error.code).toBe('injected_failure');
  const write = await call(base, 'PUT', '/api/flaky/x', { v: 1 });
  expect(write.status).toBe(503);

  const after = await call(base, 'GET', '/api/flaky');
  expect(after.status).toBe(200);
  expect(after.body.total).toBe(0);
});

it('with failOnlyWrites, reads go through and the failures wait for writes', async () => {
  await chaos({ failNext: 1, failOnlyWrites: true });
  expect((await call(base, 'GET', '/api/flaky_writes')).status).toBe(200);
  expect((await call(base, 'PUT', '/api/flaky_writes/x', { v: 1 })).status).toBe(503);
  expect((await call(base, 'PUT', '/api/flaky_writes/x', { v: 1 })).status).toBe(200);
  expect((await chaos({ failNext: 1, failOnlyWrites: 'yes' })).status).toBe(400);
});

it('uses the given failStatus', async () => {
  await chaos({ failNext: 1, failStatus: 429, retryAfterSec: 0 });
  const res = await call(base, 'GET', '/api/flaky');
  expect(res.status).toBe(429);
  expect(res.headers.get('retry-after')).toBe('0');
});

it('does not fail the event feed', async () => {
  await chaos({ failNext: 1 });
  const client = await openSse(`${base}/api/flaky_feed/events`);
  expect(client.status).toBe(200);
  client.close();
  expect((await call(base, 'GET', '/api/flaky_feed')).status).toBe(503);
});

it('refuses /api connections while refuseForMs lasts, admin routes keep working', async () => {
  await chaos({ refuseForMs: 60_000 });
  await expect(call(base, 'GET', '/api/refused')).rejects.toThrow();
  await expect(openWs(wsUrl(base, 'refused'))).rejects.toThrow();
  expect((await call(base, 'GET', '/admin/chaos')).body.refuseForMs).toBeGreaterThan(0);

  await chaos({ refuseForMs: 0 });
  expect((await call(base, 'GET', '/api/refused')).status).toBe(200);
});

it('pauses the SSE feed and delivers held events in order on resume', async () => {
  const client = await openSse(`${base}/api/paused_sse/events`);
  await chaos({ pauseFeed: true });
  await call(base, 'PUT', '/api/paused_sse/one', {});
  await call(base, 'PUT', '/api/paused_sse/two', {});
  // Heartbeats written after both commits prove the changes were held, not
  // just slow (two, because one may already have been on its way).
  const beats = (f: SseFrame[]) => f.filter((x) => x.type === 'event' && x.event === 'heartbeat').length;
  const beatsBefore = beats(client.frames.items);
  await client.frames.until((f) => beats(f) > beatsBefore + 1, 'two later heartbeats');
  // A connection without a resume point is first told the head id (a reset).
  const changes = (f: SseFrame[]) => sseEvents(f).filter((e) => e.event === 'change');
  expect(changes(client.frames.items)).toEqual([]);

  await chaos({ pauseFeed: false });
  const frames = await client.frames.until((f) => changes(f).length === 2, 'the held changes');
  expect(changes(frames).map((e) => e.data.id)).toEqual(['one', 'two']);
  client.close();
});

it('pauses the WebSocket feed too', async () => {
  const client = await openWs(wsUrl(base, 'paused_ws'));
  await chaos({ pauseFeed: true });
  await call(base, 'PUT', '/api/paused_ws/one', {});
  await call(base, 'PUT', '/api/paused_ws/two', {});
  const beats = (m: any[]) => m.filter((x) => x.type === 'heartbeat').length;
  const beatsBefore = beats(client.messages.items);
  await client.messages.until((m) => beats(m) > beatsBefore + 1, 'two later heartbeats');
  expect(client.messages.items.filter((m) => m.type === 'change')).toEqual([]);

  await call(base, 'POST', '/admin/chaos/reset');
  const got = await client.messages.until((m) => m.filter((x) => x.type === 'change').length === 2, 'the held changes');
  expect(got.filter((m) => m.type === 'change').map((m) => m.id)).toEqual(['one', 'two']);
  client.close();
});
