import { afterAll, beforeAll, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { call, openWs, startTestMaster, wsUrl } from './testkit.js';
import type { TestMaster, WsClient } from './testkit.js';

type Message = { type: string; eventId?: string; kind?: string; id?: string };

let master: TestMaster;
let base: string;
const open: WsClient[] = [];

async function feed(table: string, query = ''): Promise<WsClient> {
  const client = await openWs(wsUrl(base, table, query));
  open.push(client);
  return client;
}

const feedMessages = (messages: Message[]) => messages.filter((m) => m.type !== 'ping');
const changeIds = (messages: Message[]) => feedMessages(messages).map((m) => m.id);
const hasChangeFor = (id: string) => (messages: Message[]) => messages.some((m) => m.type === 'change' && m.id === id);
const latestEventId = async (): Promise<number> => (await call(base, 'GET', '/admin/stats')).body.events;

beforeAll(async () => {
  master = await startTestMaster({ eventRetention: 5, heartbeatMs: 50 });
  base = master.url;
});
afterAll(async () => {
  for (const client of open) client.close();
  await master.dispose();
});

it('delivers changes in order as JSON messages', async () => {
  const client = await feed('ws_kinds');
  await call(base, 'PUT', '/api/ws_kinds/a', {});
  await call(base, 'PATCH', '/api/ws_kinds/a', { v: 1 });
  await call(base, 'DELETE', '/api/ws_kinds/a');
  await call(base, 'DELETE', '/api/ws_kinds');
  const got = feedMessages(await client.messages.until((m) => feedMessages(m).length === 4, 'four changes'));
  const latest = await latestEventId();
  expect(got).toEqual([
    { type: 'change', eventId: String(latest - 3), kind: 'inserted', id: 'a' },
    { type: 'change', eventId: String(latest - 2), kind: 'updated', id: 'a' },
    { type: 'change', eventId: String(latest - 1), kind: 'deleted', id: 'a' },
    { type: 'change', eventId: String(latest), kind: 'changed' },
  ]);
});

it('starts from now without ?since, and only for its table', async () => {
  await call(base, 'PUT', '/api/ws_now/before', {});
  const client = await feed('ws_now');
  await call(base, 'PUT', '/api/ws_other/x', {});
  await call(base, 'PUT', '/api/ws_now/after', {});
  expect(changeIds(await client.messages.until(hasChangeFor('after'), 'the live change'))).toEqual(['after']);
});

it('a reconnect with ?since gets exactly what it missed', async () => {
  const first = await feed('ws_resume');
  await call(base, 'PUT', '/api/ws_resume/seen', {});
  const seen = (await first.messages.until(hasChangeFor('seen'), 'the seen change')).find((m) => m.id === 'seen');
  first.close();
  await first.closed;

  await call(base, 'PUT', '/api/ws_resume/missed1', {});
  await call(base, 'PUT', '/api/ws_resume/missed2', {});
  const again = await feed('ws_resume', `?since=${seen?.eventId}`);
  await call(base, 'PUT', '/api/ws_resume/live', {});
  expect(changeIds(await again.messages.until(hasChangeFor('live'), 'the live change'))).toEqual(['missed1', 'missed2', 'live']);
});

it('sends a reset when the resume id was trimmed away', async () => {
  await call(base, 'PUT', '/api/ws_trim/old', {});
  const old = await latestEventId();
  for (let i = 0; i < 7; i++) await call(base, 'PUT', `/api/ws_trim/n${i}`, {});
  const latest = await latestEventId();
  const client = await feed('ws_trim', `?since=${old}`);
  await call(base, 'PUT', '/api/ws_trim/live', {});
  const got = feedMessages(await client.messages.until(hasChangeFor('live'), 'the live change'));
  expect(got[0]).toEqual({ type: 'reset', eventId: String(latest) });
  expect(got.slice(1).map((m) => m.id)).toEqual(['live']);
});

it('sends a reset for an id from the future', async () => {
  const latest = await latestEventId();
  const client = await feed('ws_future', `?since=${latest + 100}`);
  const [reset] = feedMessages(await client.messages.until((m) => feedMessages(m).length === 1, 'the reset'));
  expect(reset).toEqual({ type: 'reset', eventId: String(latest) });
});

it('sends heartbeat messages', async () => {
  const client = await feed('ws_ping');
  await client.messages.until((m) => m.some((x) => x.type === 'ping'), 'a ping');
});

it('refuses upgrades outside /api/:table/ws', async () => {
  const attempt = (url: string) =>
    new Promise<number>((resolve) => {
      const ws = new WebSocket(url);
      ws.on('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.on('error', () => {});
    });
  expect(await attempt(`${base.replace('http', 'ws')}/api/t/events`)).toBe(404);
  expect(await attempt(`${base.replace('http', 'ws')}/api/bad.name/ws`)).toBe(400);
});

it('close() closes open sockets', async () => {
  const own = await startTestMaster();
  const client = await openWs(wsUrl(own.url, 't'));
  await own.dispose();
  expect(await client.closed).toBe(1001);
});
