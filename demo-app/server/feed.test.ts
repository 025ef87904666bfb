import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocketServer } from 'ws';
import { FeedHub } from './feed.js';
import type { ChangeLog, FeedMessage } from './feed.js';
import { serveWs } from './socket.js';
import { serveSse } from './sse.js';
import { OPEN } from './store.js';
import type { ChangeEvent } from './store.js';
import { openSse, openWs, sseEvents } from './testkit.js';

/** The hub only reads the change log; an array is enough. */
function changeLog(events: ChangeEvent[] = []): ChangeLog {
  return {
    latestEventId: () => events.at(-1)?.eventId ?? 0,
    trimmedThrough: () => 0,
    eventsAfter: (table, owner, after) => events.filter((e) => e.table === table && e.owner === owner && e.eventId > after),
  };
}

const T = { table: 't', owner: OPEN };
const inserted = (eventId: number, id = `r${eventId}`): ChangeEvent => ({ eventId, table: 't', owner: OPEN, kind: 'inserted', id });

function collect(hub: FeedHub, resumeFrom: string | undefined): FeedMessage[] {
  const got: FeedMessage[] = [];
  hub.subscribe(T, resumeFrom, { send: (m) => got.push(m), end: () => {} });
  return got;
}

describe('FeedHub', () => {
  it('tells a subscriber without a resume point the head id at once, as a reset', () => {
    const hub = new FeedHub(changeLog([inserted(1), inserted(2)]));
    expect(collect(hub, undefined)).toEqual([{ type: 'reset', eventId: 2 }]);
  });

  it('sends the backlog up to maxBacklog events, and a reset with the head id past it', () => {
    const hub = new FeedHub(changeLog([1, 2, 3, 4].map((n) => inserted(n))), { maxBacklog: 3 });
    expect(collect(hub, '1').map((m) => (m.type === 'change' ? m.event.eventId : m.type))).toEqual([2, 3, 4]);
    expect(collect(hub, '0')).toEqual([{ type: 'reset', eventId: 4 }]);
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
