import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket as NodeWebSocket } from 'ws';
import {
  defaultEnv,
  LiveTable,
  MemCache,
  RestTable,
  SseLiveStream,
  WebSocketLiveStream,
  type LiveEvent,
  type LiveTableEvent,
  type StreamState,
} from '../../src/index.js';
import type { WebSocketConstructor } from '../../src/stream/websocket.js';
import { TestMaster } from '../support/master.js';
import type { ReconnectingStreamOptions } from '../../src/stream/reconnecting.js';
import { NodeEventSource } from '../support/node-event-source.js';
import { StallProxy } from '../support/stall-proxy.js';

// `ws` is close enough to the DOM WebSocket for the stream.
const WS = NodeWebSocket as unknown as WebSocketConstructor;
const backoff = { baseMs: 20, capMs: 200 };
const SLOW = { timeout: 10_000, interval: 10 };

type Stream = SseLiveStream | WebSocketLiveStream;
/** Opens the products feed of the master (or proxy) at `base`, e.g. `http://127.0.0.1:1234`. */
type Open = (base: string, opts?: ReconnectingStreamOptions) => Stream;

const transports: Array<[string, Open]> = [
  ['SseLiveStream', (base, opts) => new SseLiveStream(`${base}/api/products/events`, { EventSource: NodeEventSource, backoff, ...opts })],
  ['WebSocketLiveStream', (base, opts) => new WebSocketLiveStream(`${base.replace(/^http/, 'ws')}/api/products/ws`, { WebSocket: WS, backoff, ...opts })],
];

const masters: TestMaster[] = [];
const cleanups: Array<() => void | Promise<void>> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
  for (const m of masters.splice(0)) await m.dispose();
});

async function startMaster(opts: Parameters<typeof TestMaster.start>[0] = {}): Promise<TestMaster> {
  const master = await TestMaster.start(opts);
  masters.push(master);
  await master.seed(); // a, b, c: event 1
  return master;
}

/**
 * Subscribe to a stream that has no resume point and keep what it delivers;
 * resolves once the master told it the head (a reset, `events[0]`).
 */
async function listen(stream: Stream, master: TestMaster) {
  const head = (await master.stats()).events;
  const events: LiveEvent[] = [];
  const states: StreamState[] = [];
  cleanups.push(() => stream.close());
  stream.onState((s) => states.push(s));
  stream.subscribe((e) => events.push(e));
  await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: String(head) }]), SLOW);
  return { events, states };
}

const eventIds = (events: LiveEvent[]) => events.map((e) => Number(e.eventId));

describe.each(transports)('%s against the real master', (_name, open) => {
  it('delivers the changes of real writes in order, as LiveEvents with their event ids', async () => {
    const master = await startMaster();
    const stream = open(master.url);
    const { events } = await listen(stream, master);
    const base = (await master.stats()).events;
    await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 });
    await master.call('PATCH', '/products/d', { price: 4 });
    await master.call('DELETE', '/products/d');
    await master.call('PUT', '/products/e', { name: 'Eclair', price: 5 });
    await master.call('DELETE', '/products');
    await vi.waitFor(() => expect(events).toHaveLength(6), SLOW);
    expect(events.slice(1)).toEqual([
      { kind: 'inserted', id: 'd', eventId: String(base + 1) },
      { kind: 'updated', id: 'd', eventId: String(base + 2) },
      { kind: 'deleted', id: 'd', eventId: String(base + 3) },
      { kind: 'inserted', id: 'e', eventId: String(base + 4) },
      { kind: 'changed', eventId: String(base + 5) },
    ]);
    expect(stream.lastEventId).toBe(String(base + 5));
    expect((await master.stats()).events).toBe(base + 5);
  });

  it('after the master drops the connection, reconnects and resumes from the last id with no gap and no duplicate', async () => {
    const master = await startMaster();
    const stream = open(master.url);
    const { events, states } = await listen(stream, master);
    events.splice(0); // the head
    await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 });
    await master.call('PATCH', '/products/d', { price: 4 });
    await vi.waitFor(() => expect(events).toHaveLength(2), SLOW);

    await master.stop(); // the server side closes the feed
    await vi.waitFor(() => expect(stream.state).toBe('connecting'), SLOW);
    // Changes the client cannot see as they happen: another master process on the same database.
    await master.whileDown(async (api) => {
      for (const [method, path, body] of [
        ['POST', '/products', { id: 'e', name: 'Eclair', price: 5 }],
        ['DELETE', '/products/d', undefined],
        ['PATCH', '/products/a', { price: 13 }],
      ] as const) {
        const res = await fetch(`${api}${path}`, { method, body: body && JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        expect(res.ok).toBe(true);
      }
    });
    await master.restart();
    await vi.waitFor(() => expect(events).toHaveLength(5), SLOW);
    await master.call('POST', '/products', { id: 'f', name: 'Fig Roll', price: 6 });
    await vi.waitFor(() => expect(events).toHaveLength(6), SLOW);

    const latest = (await master.stats()).events;
    expect(eventIds(events)).toEqual([latest - 5, latest - 4, latest - 3, latest - 2, latest - 1, latest]);
    expect(events.map((e) => `${e.kind} ${'id' in e ? e.id : ''}`)).toEqual([
      'inserted d',
      'updated d',
      'inserted e',
      'deleted d',
      'updated a',
      'inserted f',
    ]);
    expect(states.slice(0, 2)).toEqual(['connecting', 'open']);
    expect(states.at(-1)).toBe('open');
    expect(states.filter((s) => s === 'open').length).toBeGreaterThanOrEqual(2);
  });

  it('reports reset when the last id it saw is older than the master still remembers', async () => {
    const master = await startMaster({ eventRetention: 3 });
    const stream = open(master.url);
    const { events } = await listen(stream, master);
    events.splice(0); // the head
    await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 });
    await vi.waitFor(() => expect(events).toHaveLength(1), SLOW);

    await master.stop();
    await master.whileDown(async (api) => {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(`${api}/products/d`, { method: 'PATCH', body: JSON.stringify({ price: i }), headers: { 'content-type': 'application/json' } });
        expect(res.ok).toBe(true);
      }
    });
    await master.restart();
    await vi.waitFor(() => expect(events).toHaveLength(2), SLOW);
    const latest = (await master.stats()).events;
    expect(events[1]).toEqual({ kind: 'reset', eventId: String(latest) });

    // The stream goes on from the reset point.
    await master.call('DELETE', '/products/d');
    await vi.waitFor(() => expect(events).toHaveLength(3), SLOW);
    expect(events[2]).toEqual({ kind: 'deleted', id: 'd', eventId: String(latest + 1) });
  });

  it('notices a half-open connection by its missing heartbeats, reconnects and resumes from its last id, missing nothing', async () => {
    const proxy = await StallProxy.start();
    cleanups.push(() => proxy.close());
    const master = await startMaster({ heartbeatMs: 200, allowedHosts: [proxy.host] }); // silence past 400 ms means dead
    proxy.targetPort = master.port;
    const stream = open(proxy.url);
    const { events, states } = await listen(stream, master);
    await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 });
    await vi.waitFor(() => expect(events).toHaveLength(2), SLOW);
    const lastSeen = stream.lastEventId;
    const connections = proxy.requestLines.length;

    proxy.stall(); // both ends still think the connection is open
    await master.call('PATCH', '/products/d', { price: 4 }); // written into the dead connection
    await master.call('DELETE', '/products/d');
    await vi.waitFor(() => expect(events).toHaveLength(4), SLOW);
    await master.call('PUT', '/products/e', { name: 'Eclair', price: 5 });
    await vi.waitFor(() => expect(events).toHaveLength(5), SLOW);

    expect(proxy.requestLines[connections]).toContain(`since=${lastSeen}`);
    const latest = (await master.stats()).events;
    expect(eventIds(events.slice(1))).toEqual([latest - 3, latest - 2, latest - 1, latest]);
    expect(events.slice(2).map((e) => `${e.kind} ${'id' in e ? e.id : ''}`)).toEqual(['updated d', 'deleted d', 'inserted e']);
    expect(states.filter((s) => s === 'open').length).toBeGreaterThanOrEqual(2);
  });

  it('back online, a stream waiting out its backoff reconnects at once and resumes', async () => {
    const master = await startMaster();
    const online = new Set<() => void>();
    const stream = open(master.url, {
      env: { ...defaultEnv, random: () => 0.5 },
      backoff: { baseMs: 60_000, capMs: 60_000 }, // 30 s: far longer than the test may wait
      online: (fn) => {
        online.add(fn);
        return () => online.delete(fn);
      },
    });
    const { events } = await listen(stream, master);
    events.splice(0); // the head
    await master.stop();
    await vi.waitFor(() => expect(stream.state).toBe('connecting'), SLOW); // waiting out its backoff
    await master.whileDown(async (api) => {
      const res = await fetch(`${api}/products/a`, { method: 'PATCH', body: JSON.stringify({ price: 1 }), headers: { 'content-type': 'application/json' } });
      expect(res.ok).toBe(true);
    });
    await master.restart();
    const missed = String((await master.stats()).events);

    for (const fn of online) fn();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'updated', id: 'a', eventId: missed }]), SLOW);
    expect(stream.state).toBe('open');
  });
});

describe.each(transports)('a LiveTable fed by %s over a RestTable', (_name, open) => {
  it('the first visit after an absence refetches: a stream without a resume point marks what was cached stale', async () => {
    const master = await startMaster();
    const cache = new MemCache(); // survives between visits, as IndexedDB does
    const earlier = new LiveTable(new RestTable(master.api, 'products'), 'products', cache);
    expect((await earlier.read({ page: 1, ipp: 10 })).source).toBe('master');
    earlier.close();
    expect((await master.call('PATCH', '/products/a', { price: 99 })).status).toBe(200); // while away
    const head = String((await master.stats()).events);

    const stream = open(master.url); // no resume point: nothing stored from the last visit
    const table = new LiveTable(new RestTable(master.api, 'products'), 'products', cache, { stream });
    cleanups.push(() => table.close());
    const seen: LiveTableEvent[] = [];
    table.subscribe((e) => seen.push(e));
    await vi.waitFor(() => expect(seen).toContainEqual({ type: 'live', event: { kind: 'reset', eventId: head } }), SLOW);
    const page = await table.read({ page: 1, ipp: 10 });
    expect(page.source).toBe('master');
    expect(page.rows[0]?.[1]).toMatchObject({ id: 'a', price: 99 });
    expect(stream.lastEventId).toBe(head);
  });

  it('a write made directly on the master invalidates the cache, and the next read shows it', async () => {
    const master = await startMaster();
    const stream = open(master.url);
    const table = new LiveTable(new RestTable(master.api, 'products'), 'products', new MemCache(), { stream });
    cleanups.push(() => table.close());
    const seen: LiveTableEvent[] = [];
    table.subscribe((e) => seen.push(e));
    // The head the master announces comes first (a reset: nothing was cached yet).
    await vi.waitFor(() => expect(seen).toContainEqual({ type: 'live', event: expect.objectContaining({ kind: 'reset' }) }), SLOW);

    expect((await table.read({ page: 1, ipp: 10 })).source).toBe('master');
    expect((await table.readOne('a')).rows[0]?.[1]).toMatchObject({ price: 12 });
    const hit = await table.read({ page: 1, ipp: 10 });
    expect(hit.source).toBe('cache');
    expect(hit.rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);

    const before = seen.filter((e) => e.type === 'invalidated').length;
    expect((await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 })).status).toBe(201);
    await vi.waitFor(() => expect(seen.filter((e) => e.type === 'invalidated').length).toBe(before + 1), SLOW);
    expect(seen).toContainEqual({ type: 'live', event: expect.objectContaining({ kind: 'inserted', id: 'd' }) });
    const fresh = await table.read({ page: 1, ipp: 10 });
    expect(fresh.source).toBe('master');
    expect(fresh.rows.map(([id]) => id)).toEqual(['a', 'b', 'c', 'd']);

    const invalidations = seen.filter((e) => e.type === 'invalidated').length;
    expect((await master.call('PATCH', '/products/a', { price: 20 })).status).toBe(200);
    await vi.waitFor(() => expect(seen.filter((e) => e.type === 'invalidated').length).toBe(invalidations + 1), SLOW);
    const row = await table.readOne('a');
    expect(row.source).toBe('master');
    expect(row.rows[0]?.[1]).toEqual({ id: 'a', name: 'Apple Pie', price: 20 });
  });
});
