import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer } from 'ws';
import { FeedHub } from './feed.js';
import type { ChangeBatch, ChangeLog, FeedConnection, FeedMessage } from './feed.js';
import { serveWs } from './socket.js';
import { serveSse } from './sse.js';
import { OPEN } from './storage/types.js';
import type { ChangeEvent } from './storage/types.js';
import { openSse, openWs, sseEvents } from './testkit.js';

/** The hub only reads the change log; an array is enough. */
function changeLog(events: ChangeEvent[] = []): ChangeLog {
  return {
    latestEventId: async () => events.at(-1)?.eventId ?? 0,
    trimmedThrough: async () => 0,
    eventsAfter: async (owner, table, after, limit) =>
      events.filter((e) => e.table === table && e.owner === owner && e.eventId > after).slice(0, limit),
  };
}

const T = { table: 't', owner: OPEN };
const inserted = (eventId: number, id = `r${eventId}`): ChangeEvent => ({ eventId, table: 't', owner: OPEN, kind: 'inserted', id });

/** A connection that records what it is sent, a batch of changes as its changes one by one. */
const recorder = (got: FeedMessage[]): FeedConnection => ({
  send: (m) => void got.push(m),
  sendChanges: (batch) => void got.push(...batch.events.map((event): FeedMessage => ({ type: 'change', event }))),
  end: () => {},
});

/** What a subscriber is sent at first: the backlog, or a reset. */
async function collect(hub: FeedHub, resumeFrom: string | undefined): Promise<FeedMessage[]> {
  const got: FeedMessage[] = [];
  hub.subscribe(T, resumeFrom, recorder(got));
  await vi.waitFor(() => expect(got.length).toBeGreaterThan(0));
  return got;
}

describe('FeedHub', () => {
  it('tells a subscriber without a resume point the head id at once, as a reset', async () => {
    const hub = new FeedHub(changeLog([inserted(1), inserted(2)]), {}, 2);
    expect(await collect(hub, undefined)).toEqual([{ type: 'reset', eventId: 2 }]);
  });

  it('sends the backlog up to maxBacklog events, and a reset with the head id past it', async () => {
    const hub = new FeedHub(changeLog([1, 2, 3, 4].map((n) => inserted(n))), { maxBacklog: 3 });
    expect((await collect(hub, '1')).map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual([2, 3, 4]);
    expect(await collect(hub, '0')).toEqual([{ type: 'reset', eventId: 4 }]);
  });

  it('sends a change published while the backlog is read once, after the backlog', async () => {
    const log = [inserted(1), inserted(2)];
    let readBacklog: () => void = () => {};
    const gate = new Promise<void>((resolve) => (readBacklog = resolve));
    const slow: ChangeLog = { ...changeLog(log), eventsAfter: async (...args) => (await gate, changeLog(log).eventsAfter(...args)) };
    const hub = new FeedHub(slow);
    const got: FeedMessage[] = [];
    hub.subscribe(T, '0', recorder(got));
    // Event 3 commits while the backlog is being read: the read sees it too, and so does the hub.
    log.push(inserted(3));
    hub.publish(inserted(3));
    expect(got).toEqual([]);
    readBacklog();
    await vi.waitFor(() => expect(got).toHaveLength(3));
    hub.publish(inserted(4));
    expect(got.map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual([1, 2, 3, 4]);
  });

  it('drops changes the reset it sent already covers', async () => {
    const hub = new FeedHub(changeLog([inserted(1), inserted(2)]), {}, 2);
    const got = await collect(hub, undefined);
    hub.publish(inserted(2)); // a late delivery of an event the head id includes
    hub.publish(inserted(3));
    expect(got.map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual(['reset', 3]);
  });

  it('sends events published together as one batch per connection of their topic, encoded once for all of them', async () => {
    const hub = new FeedHub(changeLog(), {}, 0);
    const batches: ChangeBatch[] = [];
    let encodings = 0;
    const encode = (events: readonly ChangeEvent[]): string => (encodings++, events.map((e) => e.eventId).join(','));
    const wire: string[] = [];
    for (const topic of [T, T, { table: 'other', owner: OPEN }]) {
      hub.subscribe(topic, undefined, {
        send: () => {},
        sendChanges: (batch) => void (batches.push(batch), wire.push(batch.encoded(encode))),
        end: () => {},
      });
    }
    hub.publish(inserted(1), inserted(2), { ...inserted(3), table: 'elsewhere' }, inserted(4));
    expect(batches).toHaveLength(2);
    expect(batches[0]).toBe(batches[1]);
    expect(wire).toEqual(['1,2,4', '1,2,4']);
    expect(encodings).toBe(1);
  });

  it('sends a batch that overlaps what a connection was already sent event by event, without the overlap', async () => {
    const hub = new FeedHub(changeLog([inserted(1), inserted(2)]), {}, 2);
    const got = await collect(hub, undefined); // reset to 2
    hub.publish(inserted(2), inserted(3), inserted(4));
    expect(got.map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual(['reset', 3, 4]);
  });

  it('fans out to thousands of connections a slice at a time, each hearing every event once and in order, late events joining the batch a connection still waits for', async () => {
    const hub = new FeedHub(changeLog(), {}, 0);
    const writes: number[][][] = [];
    for (let i = 0; i < 1000; i++) {
      const got: number[][] = [];
      writes.push(got);
      hub.subscribe(T, undefined, { send: () => {}, sendChanges: (batch) => void got.push(batch.events.map((e) => e.eventId)), end: () => {} });
    }
    hub.publish(inserted(1));
    expect(writes.filter((w) => w.length > 0).length).toBeLessThan(1000); // not all in one turn
    hub.publish(inserted(2));
    hub.publish(inserted(3), inserted(4));
    await vi.waitFor(() => expect(writes.every((w) => w.flat().length === 4)).toBe(true));
    for (const w of writes) expect(w.flat()).toEqual([1, 2, 3, 4]);
    expect(writes.some((w) => w.length === 1)).toBe(true); // all four in one write
    expect(Math.max(...writes.map((w) => w.length))).toBeLessThanOrEqual(2);
  });

  it('ends a fan-out slice after a couple of milliseconds when each write is slow, and still delivers everything once', async () => {
    const hub = new FeedHub(changeLog(), {}, 0);
    const writes: number[][] = [];
    for (let i = 0; i < 300; i++) {
      const got: number[] = [];
      writes.push(got);
      const slowWrite = (ids: number[]): void => {
        const until = performance.now() + 0.5; // a socket write on a loaded machine
        while (performance.now() < until);
        got.push(...ids);
      };
      hub.subscribe(T, undefined, { send: () => {}, sendChanges: (batch) => slowWrite(batch.events.map((e) => e.eventId)), end: () => {} });
    }
    hub.publish(inserted(1));
    // Far fewer than the 250 connections a slice holds when writes are quick.
    expect(writes.filter((w) => w.length > 0).length).toBeLessThan(50);
    hub.publish(inserted(2));
    await vi.waitFor(() => expect(writes.every((w) => w.length === 2)).toBe(true), { timeout: 10_000 });
    for (const w of writes) expect(w).toEqual([1, 2]);
  });

  it('holds a batch while paused and delivers it in order on resume', async () => {
    const hub = new FeedHub(changeLog(), {}, 0);
    const got = await collect(hub, undefined);
    hub.setPaused(true);
    hub.publish(inserted(1), inserted(2));
    hub.publish(inserted(3));
    expect(got).toHaveLength(1);
    hub.setPaused(false);
    expect(got.map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual(['reset', 1, 2, 3]);
  });
});

// ---------------------------------------------------------------------------
// Readers that stop reading.

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

function listening(server: Server | WebSocketServer): Promise<number> {
  return new Promise((resolve) => {
    const done = () => resolve((server.address() as AddressInfo).port);
    if (server instanceof WebSocketServer) server.once('listening', done);
    else server.listen(0, '127.0.0.1', done);
  });
}

/** A client that sends `request` and then never reads a byte: its buffers fill, then the master's. */
function stuckClient(port: number, request: string): Socket {
  const socket = connect(port, '127.0.0.1', () => socket.write(request));
  socket.on('error', () => {});
  closers.push(() => socket.destroy());
  return socket;
}

/**
 * Publishes large events in small batches, yielding between them so a reader
 * that keeps up can read, until `done()` or far more than any socket buffer holds.
 */
async function flood(hub: FeedHub, done: () => boolean): Promise<number> {
  const id = 'x'.repeat(200);
  let eventId = 0;
  while (!done() && eventId < 100_000) {
    for (let i = 0; i < 50; i++) hub.publish(inserted(++eventId, id));
    await nextTurn();
  }
  return eventId;
}

const limits = { maxBufferedBytes: 64 * 1024 };
const QUIET = 60_000; // no heartbeat during the test: only the buffer bound may drop a reader

describe('a feed connection whose reader falls behind', () => {
  it('SSE: is dropped once its buffer passes the bound, while a reader that keeps up gets everything', async () => {
    const hub = new FeedHub(changeLog(), limits);
    const server = createServer((req, res) => serveSse(req, res, hub, T, undefined, QUIET));
    closers.push(() => new Promise((resolve) => server.close(resolve)), () => server.closeAllConnections());
    const port = await listening(server);
    const reader = await openSse(`http://127.0.0.1:${port}/`);
    closers.push(() => reader.close());
    stuckClient(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await vi.waitFor(() => expect(hub.size).toBe(2));

    const last = await flood(hub, () => hub.size < 2);
    expect(hub.size).toBe(1); // the stuck one, not the reader
    await reader.frames.until((f) => sseEvents(f).at(-1)?.id === String(last), 'every event', 20_000);
    expect(sseEvents(reader.frames.items).filter((e) => e.event === 'change')).toHaveLength(last);
  });

  it('WebSocket: is dropped once its buffer passes the bound, while a reader that keeps up gets everything', async () => {
    const hub = new FeedHub(changeLog(), limits);
    const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
    wss.on('connection', (ws) => serveWs(ws, hub, T, undefined, QUIET));
    closers.push(() => new Promise((resolve) => wss.close(resolve)), () => wss.clients.forEach((c) => c.terminate()));
    const port = await listening(wss);
    const reader = await openWs(`ws://127.0.0.1:${port}/`);
    closers.push(() => reader.close());
    stuckClient(
      port,
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
    );
    await vi.waitFor(() => expect(hub.size).toBe(2));

    const last = await flood(hub, () => hub.size < 2);
    expect(hub.size).toBe(1);
    await reader.messages.until((m) => m.at(-1)?.eventId === String(last), 'every event', 20_000);
    expect(reader.messages.items.filter((m) => m.type === 'change')).toHaveLength(last);
  });
});
