import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { call, openWs, STORAGES, startTestMaster, wsUrl } from './testkit.js';
import type { TestMaster, WsClient } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  type Message = { type: string; eventId?: string; kind?: string; id?: string };

  let master: TestMaster;
  let base: string;
  const open: WsClient[] = [];

  async function feed(table: string, query = ''): Promise<WsClient> {
    const client = await openWs(wsUrl(base, table, query));
    open.push(client);
    return client;
  }

  /** Change and reset messages: what a client acts on. */
  const feedMessages = (messages: Message[]) => messages.filter((m) => m.type !== 'heartbeat');
  const changes = (messages: Message[]) => messages.filter((m) => m.type === 'change');
  const changeIds = (messages: Message[]) => changes(messages).map((m) => m.id);
  const hasChangeFor = (id: string) => (messages: Message[]) => messages.some((m) => m.type === 'change' && m.id === id);
  const latestEventId = async (): Promise<number> => (await call(base, 'GET', '/admin/stats')).body.events;

  beforeAll(async () => {
    master = await startTestMaster({ storage, eventRetention: 5, heartbeatMs: 50 });
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
    const got = changes(await client.messages.until((m) => changes(m).length === 4, 'four changes'));
    const latest = await latestEventId();
    expect(got).toEqual([
      { type: 'change', eventId: String(latest - 3), kind: 'inserted', id: 'a' },
      { type: 'change', eventId: String(latest - 2), kind: 'updated', id: 'a' },
      { type: 'change', eventId: String(latest - 1), kind: 'deleted', id: 'a' },
      { type: 'change', eventId: String(latest), kind: 'changed' },
    ]);
  });

  it('without ?since, is told the head event id at once as a reset, then only its own table\'s changes', async () => {
    await call(base, 'PUT', '/api/ws_now/before', {});
    const head = await latestEventId();
    const client = await feed('ws_now');
    await call(base, 'PUT', '/api/ws_other/x', {});
    await call(base, 'PUT', '/api/ws_now/after', {});
    const got = feedMessages(await client.messages.until(hasChangeFor('after'), 'the live change'));
    expect(got[0]).toEqual({ type: 'reset', eventId: String(head) });
    expect(got.slice(1).map((m) => m.id)).toEqual(['after']);
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

  it('sends heartbeat messages advertising the interval: one at once, then one per interval', async () => {
    const client = await feed('ws_ping');
    const got = await client.messages.until((m) => m.filter((x) => x.type === 'heartbeat').length >= 3, 'three heartbeats');
    expect(got[0]).toEqual({ type: 'heartbeat', intervalMs: 50 });
  });

  it('closes a socket that answers no heartbeat, and keeps one that does', async () => {
    const url = wsUrl(base, 'ws_idle');
    const silent = new WebSocket(url, { autoPong: false }); // a peer that is gone, as the master sees it
    const silentClosed = new Promise<number>((resolve) => silent.on('close', (code) => resolve(code)));
    const answering = await feed('ws_idle');
    let answeringClosed = false;
    void answering.closed.then(() => (answeringClosed = true));
    expect(await silentClosed).toBe(1006); // terminated, no close handshake
    const beats = answering.messages.items.filter((m) => m.type === 'heartbeat').length;
    await answering.messages.until((m) => m.filter((x) => x.type === 'heartbeat').length > beats + 2, 'more heartbeats');
    expect(answeringClosed).toBe(false);
  });

  it('past the backlog cap, sends a reset with the head id instead of the backlog', async () => {
    const capped = await startTestMaster({ storage, feedLimits: { maxBacklog: 3 } });
    try {
      for (const id of ['w', 'x', 'y', 'z']) await call(capped.url, 'PUT', `/api/t/${id}`, {});
      const tooFar = await openWs(wsUrl(capped.url, 't', '?since=0'));
      const withinCap = await openWs(wsUrl(capped.url, 't', '?since=1'));
      expect(feedMessages(await tooFar.messages.until((m) => feedMessages(m).length === 1, 'the reset'))).toEqual([{ type: 'reset', eventId: '4' }]);
      const replayed = feedMessages(await withinCap.messages.until((m) => feedMessages(m).length === 3, 'the backlog'));
      expect(replayed.map((m) => m.id)).toEqual(['x', 'y', 'z']);
      tooFar.close();
      withinCap.close();
    } finally {
      await capped.dispose();
    }
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
    const own = await startTestMaster({ storage });
    const client = await openWs(wsUrl(own.url, 't'));
    await own.dispose();
    expect(await client.closed).toBe(1001);
  });
});
