import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, openSse, sseEvents, STORAGES, startTestMaster } from './testkit.js';
import type { SseClient, SseFrame, TestMaster } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  let master: TestMaster;
  let base: string;
  const open: SseClient[] = [];

  async function feed(table: string, headers: Record<string, string> = {}, query = ''): Promise<SseClient> {
    const client = await openSse(`${base}/api/${table}/events${query}`, headers);
    open.push(client);
    return client;
  }

  /** Change and reset events: what a client acts on. */
  const events = (frames: SseFrame[]) => sseEvents(frames).filter((e) => e.event !== 'heartbeat');
  const changes = (frames: SseFrame[]) => events(frames).filter((e) => e.event === 'change');
  const changeIds = (frames: SseFrame[]) => changes(frames).map((e) => e.data.id);
  const hasChangeFor = (id: string) => (frames: SseFrame[]) => changes(frames).some((e) => e.data.id === id);
  const heartbeats = (frames: SseFrame[]) => frames.filter((f) => f.type === 'event' && f.event === 'heartbeat');

  beforeAll(async () => {
    master = await startTestMaster({ storage, eventRetention: 5, heartbeatMs: 50 });
    base = master.url;
  });
  afterAll(async () => {
    for (const client of open) client.close();
    await master.dispose();
  });

  it('opens an uncached event stream that starts with a retry hint', async () => {
    const client = await feed('sse_headers');
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(client.headers['cache-control']).toMatch(/no-cache/);
    const [first] = await client.frames.until((f) => f.length > 0, 'the first frame');
    expect(first).toEqual({ type: 'retry', ms: 1000 });
  });

  it('delivers every kind of change in order, with ids', async () => {
    const client = await feed('sse_kinds');
    await call(base, 'POST', '/api/sse_kinds', { id: 'a' });
    await call(base, 'PUT', '/api/sse_kinds/b', {});
    await call(base, 'PUT', '/api/sse_kinds/a', { v: 2 });
    await call(base, 'PATCH', '/api/sse_kinds/b', { v: 3 });
    await call(base, 'DELETE', '/api/sse_kinds/a');
    await call(base, 'DELETE', '/api/sse_kinds');
    const got = changes(await client.frames.until((f) => changes(f).length === 6, 'six changes'));

    expect(got.map((e) => [e.event, e.data.kind, e.data.id])).toEqual([
      ['change', 'inserted', 'a'],
      ['change', 'inserted', 'b'],
      ['change', 'updated', 'a'],
      ['change', 'updated', 'b'],
      ['change', 'deleted', 'a'],
      ['change', 'changed', undefined],
    ]);
    expect(got.at(-1)?.data).not.toHaveProperty('id');
    const ids = got.map((e) => Number(e.id));
    for (const e of got) expect(e.data.eventId).toBe(e.id);
    expect(ids).toEqual([...ids].sort((x, y) => x - y));
    expect(new Set(ids).size).toBe(6);
  });

  it('tells a connection without a resume point the head event id at once, as a reset, then sends live changes', async () => {
    await call(base, 'PUT', '/api/sse_now/before', {});
    const head = (await call(base, 'GET', '/admin/stats')).body.events as number;
    const client = await feed('sse_now');
    const [reset] = events(await client.frames.until((f) => events(f).length === 1, 'the reset'));
    expect(reset).toEqual({ type: 'event', id: String(head), event: 'reset', data: { eventId: String(head) } });
    await call(base, 'PUT', '/api/sse_now/after', {});
    const frames = await client.frames.until(hasChangeFor('after'), 'the live change');
    expect(events(frames).map((e) => e.event)).toEqual(['reset', 'change']);
    expect(changeIds(frames)).toEqual(['after']);
  });

  it('only sends events of its own table', async () => {
    const client = await feed('sse_mine');
    await call(base, 'PUT', '/api/sse_other/x', {});
    await call(base, 'PUT', '/api/sse_mine/y', {});
    const frames = await client.frames.until(hasChangeFor('y'), 'own change');
    expect(changeIds(frames)).toEqual(['y']);
  });

  it('a reconnect with Last-Event-ID gets exactly what it missed', async () => {
    const first = await feed('sse_resume');
    await call(base, 'PUT', '/api/sse_resume/seen', {});
    const seen = changes(await first.frames.until(hasChangeFor('seen'), 'the seen change'))[0];
    first.close();
    await first.ended;

    await call(base, 'PUT', '/api/sse_resume/missed1', {});
    await call(base, 'PUT', '/api/sse_other/noise', {});
    await call(base, 'PUT', '/api/sse_resume/missed2', {});

    const again = await feed('sse_resume', { 'Last-Event-ID': String(seen?.id) });
    await call(base, 'PUT', '/api/sse_resume/live', {});
    const frames = await again.frames.until(hasChangeFor('live'), 'the live change');
    expect(changeIds(frames)).toEqual(['missed1', 'missed2', 'live']);
  });

  it('takes the resume point from ?since= or ?lastEventId=, the header winning', async () => {
    await call(base, 'PUT', '/api/sse_query/one', {});
    const latest = (await call(base, 'GET', '/admin/stats')).body.events as number;
    await call(base, 'PUT', '/api/sse_query/two', {});

    const bySince = await feed('sse_query', {}, `?since=${latest - 1}`);
    const byLastEventId = await feed('sse_query', {}, `?lastEventId=${latest}`);
    const headerWins = await feed('sse_query', { 'Last-Event-ID': String(latest) }, `?since=${latest - 1}`);
    expect(changeIds(await bySince.frames.until((f) => events(f).length === 2, 'two replayed'))).toEqual(['one', 'two']);
    expect(changeIds(await byLastEventId.frames.until((f) => events(f).length === 1, 'one replayed'))).toEqual(['two']);
    expect(changeIds(await headerWins.frames.until((f) => events(f).length === 1, 'one replayed'))).toEqual(['two']);
  });

  it('sends a reset when the resume id was trimmed away, then continues live', async () => {
    await call(base, 'PUT', '/api/sse_trim/old', {});
    const old = (await call(base, 'GET', '/admin/stats')).body.events as number;
    for (let i = 0; i < 7; i++) await call(base, 'PUT', `/api/sse_trim/n${i}`, {});
    const latest = (await call(base, 'GET', '/admin/stats')).body.events as number;

    const client = await feed('sse_trim', { 'Last-Event-ID': String(old) });
    await call(base, 'PUT', '/api/sse_trim/live', {});
    const got = events(await client.frames.until(hasChangeFor('live'), 'the live change'));
    expect(got[0]).toEqual({ type: 'event', id: String(latest), event: 'reset', data: { eventId: String(latest) } });
    expect(got.slice(1).map((e) => e.data.id)).toEqual(['live']);
  });

  it('sends a reset for an id from the future (another database)', async () => {
    const latest = (await call(base, 'GET', '/admin/stats')).body.events as number;
    const client = await feed('sse_future', { 'Last-Event-ID': String(latest + 100) });
    const [reset] = events(await client.frames.until((f) => events(f).length === 1, 'the reset'));
    expect(reset).toMatchObject({ event: 'reset', id: String(latest), data: { eventId: String(latest) } });
  });

  it('replays everything from 0 when nothing was trimmed', async () => {
    const fresh = await startTestMaster({ storage, eventRetention: 5 });
    try {
      for (const id of ['x', 'y', 'z']) await call(fresh.url, 'PUT', `/api/t/${id}`, {});
      const client = await openSse(`${fresh.url}/api/t/events`, { 'Last-Event-ID': '0' });
      const frames = await client.frames.until((f) => events(f).length === 3, 'three changes');
      expect(events(frames).map((e) => [e.event, e.id, e.data.id])).toEqual([
        ['change', '1', 'x'],
        ['change', '2', 'y'],
        ['change', '3', 'z'],
      ]);
      client.close();
    } finally {
      await fresh.dispose();
    }
  });

  it('sends heartbeats as events a client sees, advertising the interval: one at once, then one per interval', async () => {
    const client = await feed('sse_ping');
    const frames = await client.frames.until((f) => heartbeats(f).length >= 3, 'three heartbeats');
    expect(frames[1]).toEqual({ type: 'event', id: undefined, event: 'heartbeat', data: { intervalMs: 50 } });
    expect(frames.some((x) => x.type === 'comment')).toBe(false); // EventSource would never show a comment
  });

  it('past the backlog cap, sends a reset with the head id instead of the backlog', async () => {
    const capped = await startTestMaster({ storage, feedLimits: { maxBacklog: 3 } });
    try {
      for (const id of ['w', 'x', 'y', 'z']) await call(capped.url, 'PUT', `/api/t/${id}`, {});
      const tooFar = await openSse(`${capped.url}/api/t/events`, { 'Last-Event-ID': '0' });
      const withinCap = await openSse(`${capped.url}/api/t/events`, { 'Last-Event-ID': '1' });
      expect(events(await tooFar.frames.until((f) => events(f).length === 1, 'the reset'))).toEqual([
        { type: 'event', id: '4', event: 'reset', data: { eventId: '4' } },
      ]);
      const replayed = await withinCap.frames.until((f) => events(f).length === 3, 'the backlog');
      expect(events(replayed).map((e) => [e.event, e.data.id])).toEqual([
        ['change', 'x'],
        ['change', 'y'],
        ['change', 'z'],
      ]);
      await call(capped.url, 'PUT', '/api/t/live', {});
      await tooFar.frames.until(hasChangeFor('live'), 'the live change after the reset');
      expect(events(tooFar.frames.items).map((e) => e.event)).toEqual(['reset', 'change']);
      tooFar.close();
      withinCap.close();
    } finally {
      await capped.dispose();
    }
  });

  it('close() ends open streams', async () => {
    const own = await startTestMaster({ storage });
    const client = await openSse(`${own.url}/api/t/events`);
    await own.dispose();
    await client.ended;
  });
});
