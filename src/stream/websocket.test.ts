import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WebSocket as NodeWebSocket, WebSocketServer } from 'ws';
import type { WebSocket as ServerSocket } from 'ws';
import { ManualEnv } from '../../test/support/manual-env.js';
import { defaultEnv } from '../env.js';
import type { Env } from '../env.js';
import type { LiveEvent, StreamState } from './types.js';
import { WebSocketLiveStream } from './websocket.js';
import type { WebSocketConstructor } from './websocket.js';

// `ws` is close enough to the DOM WebSocket for this stream.
const WS = NodeWebSocket as unknown as WebSocketConstructor;

interface WsServer {
  url: string;
  requests: string[];
  closedCount: number;
  clients: Set<ServerSocket>;
  change(kind: 'inserted' | 'updated' | 'deleted' | 'changed', id?: string): number;
  reset(): number;
  raw(text: string): void;
  dropAll(): void;
  close(): Promise<void>;
}

const servers: WsServer[] = [];
const streams: WebSocketLiveStream[] = [];

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** Like the real master: a heartbeat advertising `heartbeatMs` at once, and the head id as a reset without `since`. */
async function startServer(opts: { inclusiveReplay?: boolean; heartbeatMs?: number } = {}): Promise<WsServer> {
  const history: Array<{ eventId: number; text: string }> = [];
  let next = 1;
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => wss.once('listening', resolve));
  const store = (eventId: number, msg: object) => {
    const text = JSON.stringify(msg);
    history.push({ eventId, text });
    api.raw(text);
    return eventId;
  };
  const api: WsServer = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/api/items/live`,
    requests: [],
    closedCount: 0,
    clients: new Set(),
    change(kind, id) {
      const eventId = next++;
      const base = { type: 'change', eventId: String(eventId), kind };
      return store(eventId, kind === 'changed' ? base : { ...base, id });
    },
    reset() {
      const eventId = next++;
      return store(eventId, { type: 'reset', eventId: String(eventId) });
    },
    raw(text) {
      for (const c of api.clients) c.send(text);
    },
    dropAll() {
      for (const c of api.clients) c.terminate();
      api.clients.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
  wss.on('connection', (socket, req) => {
    api.requests.push(req.url ?? '');
    socket.send(JSON.stringify({ type: 'heartbeat', intervalMs: opts.heartbeatMs ?? 15_000 }));
    const since = new URL(req.url ?? '/', 'http://x').searchParams.get('since');
    if (since === null) socket.send(JSON.stringify({ type: 'reset', eventId: String(next - 1) }));
    if (since !== null) {
      const after = Number(since);
      for (const e of history) if (opts.inclusiveReplay ? e.eventId >= after : e.eventId > after) socket.send(e.text);
    }
    api.clients.add(socket);
    socket.on('close', () => {
      api.closedCount++;
      api.clients.delete(socket);
    });
  });
  servers.push(api);
  return api;
}

const immediate: Env = { ...defaultEnv, random: () => 0 };

function open(url: string, opts: ConstructorParameters<typeof WebSocketLiveStream>[1] = {}) {
  const stream = new WebSocketLiveStream(url, { WebSocket: WS, env: immediate, ...opts });
  streams.push(stream);
  const events: LiveEvent[] = [];
  const states: StreamState[] = [];
  stream.onState((s) => states.push(s));
  return { stream, events, states, listen: () => stream.subscribe((e) => events.push(e)) };
}

describe('WebSocketLiveStream', () => {
  it('delivers change and reset messages in order, keeping heartbeats and malformed messages from listeners', async () => {
    const server = await startServer();
    const ids: string[] = [];
    const { stream, events, listen } = open(server.url, { onEventId: (id) => ids.push(id) });
    expect(server.requests).toEqual([]); // lazy
    listen();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: '0' }])); // the head, at once

    server.change('inserted', 'a');
    server.raw('{"type":"heartbeat","intervalMs":1000}');
    server.raw('{"type":"ping"}'); // an older master's heartbeat
    server.change('updated', 'b');
    server.raw('not json');
    server.raw('{"type":"change","eventId":"x","kind":"inserted"}'); // no id
    server.raw('{"type":"what"}');
    server.change('deleted', 'c');
    server.change('changed');
    server.reset();

    await vi.waitFor(() => expect(events).toHaveLength(6));
    expect(events.slice(1)).toEqual([
      { kind: 'inserted', id: 'a', eventId: '1' },
      { kind: 'updated', id: 'b', eventId: '2' },
      { kind: 'deleted', id: 'c', eventId: '3' },
      { kind: 'changed', eventId: '4' },
      { kind: 'reset', eventId: '5' },
    ]);
    expect(stream.lastEventId).toBe('5');
    expect(ids).toEqual(['0', '1', '2', '3', '4', '5']);
  });

  it('reconnects after the server drops it, resuming with since= and no duplicates', async () => {
    const server = await startServer();
    const { stream, events, states, listen } = open(server.url);
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(1)); // the head
    server.change('inserted', 'a');
    server.change('updated', 'a');
    await vi.waitFor(() => expect(events).toHaveLength(3));

    server.dropAll();
    server.change('deleted', 'a'); // only the replay can bring these
    server.reset();

    await vi.waitFor(() => expect(events).toHaveLength(5));
    await vi.waitFor(() => expect(server.clients.size).toBe(1));
    server.change('inserted', 'z');
    await vi.waitFor(() => expect(events).toHaveLength(6));

    expect(events.map((e) => e.eventId)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(events[4]).toEqual({ kind: 'reset', eventId: '4' });
    expect(server.requests).toEqual(['/api/items/live', '/api/items/live?since=2']);
    expect(states).toEqual(['connecting', 'open', 'connecting', 'open']);
    expect(stream.lastEventId).toBe('5');
  });

  it('skips an event the server replays again', async () => {
    const server = await startServer({ inclusiveReplay: true });
    const { events, listen } = open(`${server.url}?table=items`);
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(1)); // the head
    server.change('inserted', 'a');
    server.change('inserted', 'b');
    await vi.waitFor(() => expect(events).toHaveLength(3));
    server.dropAll();
    server.change('inserted', 'c');
    await vi.waitFor(() => expect(events).toHaveLength(4));
    await vi.waitFor(() => expect(server.clients.size).toBe(1));
    server.change('inserted', 'd');
    await vi.waitFor(() => expect(events).toHaveLength(5));
    expect(server.requests[1]).toBe('/api/items/live?table=items&since=2');
    expect(events.map((e) => (e.kind === 'inserted' ? e.id : e.kind))).toEqual(['reset', 'a', 'b', 'c', 'd']);
  });

  it('starts from opts.lastEventId', async () => {
    const server = await startServer();
    for (let i = 0; i < 3; i++) server.change('changed');
    const { events, listen } = open(server.url, { lastEventId: '2' });
    listen();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'changed', eventId: '3' }]));
    expect(server.requests).toEqual(['/api/items/live?since=2']);
  });

  it('closes the socket when the last listener unsubscribes', async () => {
    const server = await startServer();
    const { stream, states, listen } = open(server.url);
    const offA = listen();
    const offB = listen();
    await vi.waitFor(() => expect(server.clients.size).toBe(1));
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    offA();
    expect(stream.state).toBe('open');
    offB();
    expect(stream.state).toBe('closed');
    await vi.waitFor(() => expect(server.closedCount).toBe(1));
    expect(server.requests).toHaveLength(1);
    expect(states).toEqual(['connecting', 'open', 'closed']);
  });

  it('unsubscribing while still connecting does not throw or reconnect', async () => {
    const server = await startServer();
    const { stream, listen } = open(server.url);
    const off = listen();
    off(); // ws aborts the handshake
    expect(stream.state).toBe('closed');
    const again = listen();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    again();
    await vi.waitFor(() => expect(server.clients.size).toBe(0));
    expect(stream.state).toBe('closed');
  });

  it('keeps retrying with backoff while the server is unreachable', async () => {
    const server = await startServer();
    const url = server.url;
    await servers.splice(0)[0]?.close();
    const timers: Array<{ fn: () => void; ms: number }> = [];
    const env: Env = { ...defaultEnv, random: () => 0.5, setTimer: (fn, ms) => (timers.push({ fn, ms }), () => {}) };
    const { stream, states, listen } = open(url, { env, backoff: { baseMs: 100, capMs: 1000 }, heartbeatTimeoutMs: 0 });
    listen();
    await vi.waitFor(() => expect(timers).toHaveLength(1));
    timers[0]?.fn();
    await vi.waitFor(() => expect(timers).toHaveLength(2));
    expect(timers.map((t) => t.ms)).toEqual([50, 100]);
    expect(states).toEqual(['connecting']);
    stream.close();
    expect(stream.state).toBe('closed');
    timers[1]?.fn(); // a late timer after close does nothing
    expect(stream.state).toBe('closed');
  });

  it('without a resume point reports the head as a reset; a socket silent for twice the advertised interval is reopened with since', async () => {
    const env = new ManualEnv();
    const server = await startServer({ heartbeatMs: 1000 });
    server.change('inserted', 'a');
    const { stream, events, listen } = open(server.url, { env });
    listen();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: '1' }]));
    expect(stream.lastEventId).toBe('1');
    env.advance(1999);
    expect(stream.state).toBe('open');
    env.advance(1); // the socket is open, but nothing came for 2 x 1000 ms
    expect(stream.state).toBe('connecting');
    env.advance((env.nextTimerAt ?? 0) - env.time); // the backoff
    await vi.waitFor(() => expect(server.requests).toEqual(['/api/items/live', '/api/items/live?since=1']));
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    server.change('updated', 'a');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events[1]).toEqual({ kind: 'updated', id: 'a', eventId: '2' });
  });

  it('throws a clear error when there is no WebSocket', () => {
    vi.stubGlobal('WebSocket', undefined);
    try {
      expect(() => new WebSocketLiveStream('ws://127.0.0.1:1/')).toThrow(/no WebSocket.*opts\.WebSocket/);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});
