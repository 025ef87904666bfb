import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket as NodeWebSocket } from 'ws';
import {
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
import { NodeEventSource } from '../support/node-event-source.js';

// `ws` is close enough to the DOM WebSocket for the stream.
const WS = NodeWebSocket as unknown as WebSocketConstructor;
const backoff = { baseMs: 20, capMs: 200 };
const SLOW = { timeout: 10_000, interval: 10 };

type Stream = SseLiveStream | WebSocketLiveStream;

const transports: Array<[string, (master: TestMaster) => Stream]> = [
  ['SseLiveStream', (m) => new SseLiveStream(`${m.api}/products/events`, { EventSource: NodeEventSource, backoff })],
  ['WebSocketLiveStream', (m) => new WebSocketLiveStream(`${m.api.replace(/^http/, 'ws')}/products/ws`, { WebSocket: WS, backoff })],
];

const masters: TestMaster[] = [];
const cleanups: Array<() => void> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0)) fn();
  for (const m of masters.splice(0)) await m.dispose();
});

async function startMaster(opts: Parameters<typeof TestMaster.start>[0] = {}): Promise<TestMaster> {
  const master = await TestMaster.start(opts);
  masters.push(master);
  await master.seed(); // a, b, c: event 1
  return master;
}

/** Subscribe to a stream and keep what it delivers; resolves once the connection is open. */
async function listen(stream: Stream) {
  const events: LiveEvent[] = [];
  const states: StreamState[] = [];
  cleanups.push(() => stream.close());
  stream.onState((s) => states.push(s));
  stream.subscribe((e) => events.push(e));
  await vi.waitFor(() => expect(stream.state).toBe('open'), SLOW);
  return { events, states };
}

const eventIds = (events: LiveEvent[]) => events.map((e) => Number(e.eventId));

describe.each(transports)('%s against the real master', (_name, open) => {
  it('delivers the changes of real writes in order, as LiveEvents with their event ids', async () => {
    const master = await startMaster();
    const stream = open(master);
    const { events } = await listen(stream);
    const base = (await master.stats()).events;
    await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 });
    await master.call('PATCH', '/products/d', { price: 4 });
    await master.call('DELETE', '/products/d');
    await master.call('PUT', '/products/e', { name: 'Eclair', price: 5 });
    await master.call('DELETE', '/products');
    await vi.waitFor(() => expect(events).toHaveLength(5), SLOW);
    expect(events).toEqual([
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
    const stream = open(master);
    const { events, states } = await listen(stream);
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
    const stream = open(master);
    const { events } = await listen(stream);
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
});

describe.each(transports)('a LiveTable fed by %s over a RestTable', (_name, open) => {
  it('a write made directly on the master invalidates the cache, and the next read shows it', async () => {
    const master = await startMaster();
    const stream = open(master);
    const table = new LiveTable(new RestTable(master.api, 'products'), 'products', new MemCache(), { stream });
    cleanups.push(() => table.close());
    const seen: LiveTableEvent[] = [];
    table.subscribe((e) => seen.push(e));
    await vi.waitFor(() => expect(stream.state).toBe('open'), SLOW);

    expect((await table.read({ page: 1, ipp: 10 })).source).toBe('master');
    expect((await table.readOne('a')).rows[0]?.[1]).toMatchObject({ price: 12 });
    const hit = await table.read({ page: 1, ipp: 10 });
    expect(hit.source).toBe('cache');
    expect(hit.rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);

    expect((await master.call('POST', '/products', { id: 'd', name: 'Donut', price: 3 })).status).toBe(201);
    await vi.waitFor(() => expect(seen).toContainEqual({ type: 'invalidated', prefix: 'products/', reason: 'event' }), SLOW);
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
