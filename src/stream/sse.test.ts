import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { NodeEventSource } from '../../test/support/node-event-source.js';
import { defaultEnv } from '../env.js';
import type { Env } from '../env.js';
import { configureLogging } from '../log.js';
import type { LogRecord } from '../log.js';
import { ManualEnv } from '../../test/support/manual-env.js';
import type { OnlineSignal } from './reconnecting.js';
import { SseLiveStream } from './sse.js';
import type { LiveEvent, StreamState } from './types.js';

// ---------------------------------------------------------------------------
// A small SSE master, speaking the wire format of the change feed.

interface Stored {
  eventId: number;
  frame: string;
}

interface SseServer {
  base: string;
  url: string;
  /** Request URLs (path + query) in arrival order. */
  requests: string[];
  /** Last-Event-ID headers of those requests. */
  lastEventIdHeaders: Array<string | undefined>;
  /** Responses the server has seen close. */
  closedCount: number;
  clients: Set<ServerResponse>;
  change(kind: 'inserted' | 'updated' | 'deleted' | 'changed', id?: string): number;
  reset(): number;
  raw(frame: string): void;
  dropAll(): void;
  /** Answer the next `n` requests with 503. */
  failNext(n: number): void;
  /** Custom handler for /raw. */
  rawHandler?: (req: IncomingMessage, res: ServerResponse) => void;
  close(): Promise<void>;
}

const servers: SseServer[] = [];
const streams: SseLiveStream[] = [];

afterEach(async () => {
  for (const s of streams.splice(0)) s.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
  configureLogging({ filter: '' });
});

const heartbeatFrame = (intervalMs: number) => `event: heartbeat\ndata: ${JSON.stringify({ intervalMs })}\n\n`;

/**
 * Like the real master, a connection without `since` is told the head id at
 * once (a reset) unless `announceHead` is false (an older master); with
 * `heartbeatMs` it also opens with a heartbeat advertising that interval.
 */
async function startServer(opts: { inclusiveReplay?: boolean; announceHead?: boolean; heartbeatMs?: number } = {}): Promise<SseServer> {
  const history: Stored[] = [];
  let failures = 0;
  let next = 1;
  const api: SseServer = {
    base: '',
    url: '',
    requests: [],
    lastEventIdHeaders: [],
    closedCount: 0,
    clients: new Set(),
    change(kind, id) {
      const eventId = next++;
      const body = kind === 'changed' ? { eventId: String(eventId), kind } : { eventId: String(eventId), kind, id };
      return store(eventId, `event: change\nid: ${eventId}\ndata: ${JSON.stringify(body)}\n\n`);
    },
    reset() {
      const eventId = next++;
      return store(eventId, `event: reset\nid: ${eventId}\ndata: ${JSON.stringify({ eventId: String(eventId) })}\n\n`);
    },
    raw(frame) {
      for (const c of api.clients) c.write(frame);
    },
    dropAll() {
      for (const c of api.clients) c.socket?.destroy();
      api.clients.clear();
    },
    failNext(n) {
      failures = n;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  function store(eventId: number, frame: string): number {
    history.push({ eventId, frame });
    api.raw(frame);
    return eventId;
  }
  const server: Server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/raw' && api.rawHandler) return api.rawHandler(req, res);
    api.requests.push(req.url ?? '');
    api.lastEventIdHeaders.push(req.headers['last-event-id'] as string | undefined);
    if (failures > 0) {
      failures--;
      res.writeHead(503).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
    res.write(': hello\n\n');
    if (opts.heartbeatMs !== undefined) res.write(heartbeatFrame(opts.heartbeatMs));
    const since = u.searchParams.get('since');
    if (since === null && opts.announceHead !== false) {
      const head = String(next - 1);
      res.write(`event: reset\nid: ${head}\ndata: ${JSON.stringify({ eventId: head })}\n\n`);
    }
    if (since !== null) {
      const after = Number(since);
      for (const e of history) if (opts.inclusiveReplay ? e.eventId >= after : e.eventId > after) res.write(e.frame);
    }
    api.clients.add(res);
    res.on('close', () => {
      api.closedCount++;
      api.clients.delete(res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  api.base = `http://127.0.0.1:${port}`;
  api.url = `${api.base}/api/items/events`;
  servers.push(api);
  return api;
}

const immediate: Env = { ...defaultEnv, random: () => 0 };

/** An env whose timers only run when the test says so. */
function manualEnv(random = 0.5) {
  const pending: Array<{ fn: () => void; ms: number; cancelled: boolean }> = [];
  const env: Env = {
    ...defaultEnv,
    random: () => random,
    setTimer(fn, ms) {
      const t = { fn, ms, cancelled: false };
      pending.push(t);
      return () => {
        t.cancelled = true;
      };
    },
  };
  return {
    env,
    pending,
    /** Run the oldest pending timer, returning its delay. */
    fire(): number {
      const t = pending.shift();
      if (!t) throw new Error('no pending timer');
      if (!t.cancelled) t.fn();
      return t.ms;
    },
  };
}

function open(url: string, opts: ConstructorParameters<typeof SseLiveStream>[1] = {}) {
  const stream = new SseLiveStream(url, { EventSource: NodeEventSource, env: immediate, ...opts });
  streams.push(stream);
  const events: LiveEvent[] = [];
  const states: StreamState[] = [];
  stream.onState((s) => states.push(s));
  return { stream, events, states, listen: () => stream.subscribe((e) => events.push(e)) };
}

// ---------------------------------------------------------------------------

describe('SseLiveStream', () => {
  it('delivers change and reset events in order, mapped to LiveEvents', async () => {
    const server = await startServer();
    const ids: string[] = [];
    const { stream, events, listen } = open(server.url, { onEventId: (id) => ids.push(id) });
    expect(stream.state).toBe('closed');
    expect(server.requests).toEqual([]); // lazy
    listen();
    expect(stream.state).toBe('connecting');
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: '0' }])); // the head, at once

    server.change('inserted', 'a');
    server.raw(': comment\n\n');
    server.raw(heartbeatFrame(1000)); // never a LiveEvent
    server.change('updated', 'b');
    server.raw('event: change\ndata: not json\n\n'); // malformed: ignored
    server.raw('event: change\ndata: {"eventId":"x","kind":"bogus"}\n\n'); // malformed: ignored
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
    expect(server.requests).toEqual(['/api/items/events']);
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
    // Happens while the client is away: only the replay can bring these.
    server.change('deleted', 'a');
    server.reset();

    await vi.waitFor(() => expect(events).toHaveLength(5));
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    server.change('inserted', 'z');
    await vi.waitFor(() => expect(events).toHaveLength(6));

    expect(events.map((e) => e.eventId)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(events[4]).toEqual({ kind: 'reset', eventId: '4' });
    expect(server.requests).toEqual(['/api/items/events', '/api/items/events?since=2']);
    expect(server.lastEventIdHeaders).toEqual([undefined, undefined]); // fresh EventSource, our own resume
    expect(states).toEqual(['connecting', 'open', 'connecting', 'open']);
    expect(stream.lastEventId).toBe('5');
  });

  it('skips an event the server replays again', async () => {
    const server = await startServer({ inclusiveReplay: true });
    const { events, listen } = open(server.url);
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(1)); // the head
    server.change('inserted', 'a');
    server.change('inserted', 'b');
    await vi.waitFor(() => expect(events).toHaveLength(3));
    server.dropAll();
    server.change('inserted', 'c');
    await vi.waitFor(() => expect(events).toHaveLength(4));
    await vi.waitFor(() => expect(server.requests).toHaveLength(2));
    expect(server.requests[1]).toBe('/api/items/events?since=2');
    server.change('inserted', 'd');
    await vi.waitFor(() => expect(events).toHaveLength(5));
    expect(events.map((e) => (e.kind === 'inserted' ? e.id : e.kind))).toEqual(['reset', 'a', 'b', 'c', 'd']);
  });

  it('starts from opts.lastEventId and appends &since= to a URL that has a query', async () => {
    const server = await startServer();
    for (let i = 0; i < 7; i++) server.change('changed');
    const { stream, events, listen } = open(`${server.url}?table=items`, { lastEventId: '5' });
    expect(stream.lastEventId).toBe('5');
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(server.requests).toEqual(['/api/items/events?table=items&since=5']);
    expect(events).toEqual([
      { kind: 'changed', eventId: '6' },
      { kind: 'changed', eventId: '7' },
    ]);
  });

  it('closes the connection when the last listener unsubscribes, and reopens on a new subscribe', async () => {
    const server = await startServer();
    const { stream, states, listen } = open(server.url);
    const offA = listen();
    const offB = listen();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(server.requests).toHaveLength(1); // one connection for both listeners
    offA();
    expect(stream.state).toBe('open');
    offB();
    expect(stream.state).toBe('closed');
    await vi.waitFor(() => expect(server.closedCount).toBe(1));
    expect(server.clients.size).toBe(0);

    listen();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(server.requests).toHaveLength(2);
    stream.close();
    await vi.waitFor(() => expect(server.closedCount).toBe(2));
    expect(states).toEqual(['connecting', 'open', 'closed', 'connecting', 'open', 'closed']);
  });

  it('backs off with growing delays while failing and resets the attempt after an open', async () => {
    const server = await startServer();
    server.failNext(3);
    const timers = manualEnv(0.5);
    const { stream, listen } = open(server.url, { env: timers.env, backoff: { baseMs: 100, capMs: 300 }, heartbeatTimeoutMs: 0 });
    listen();
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      await vi.waitFor(() => expect(timers.pending).toHaveLength(1));
      expect(stream.state).toBe('connecting');
      delays.push(timers.fire());
    }
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(delays).toEqual([50, 100, 150]); // 0.5 * min(300, 100 * 2^n)
    server.dropAll();
    await vi.waitFor(() => expect(timers.pending).toHaveLength(1));
    expect(timers.fire()).toBe(50); // attempt back to 0 after the open
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(server.requests).toHaveLength(5);
  });

  it('close() cancels a pending reconnect', async () => {
    const server = await startServer();
    server.failNext(1);
    const timers = manualEnv();
    const { stream, listen } = open(server.url, { env: timers.env, heartbeatTimeoutMs: 0 });
    listen();
    await vi.waitFor(() => expect(timers.pending).toHaveLength(1));
    stream.close();
    expect(stream.state).toBe('closed');
    timers.fire();
    expect(stream.state).toBe('closed');
    expect(server.requests).toHaveLength(1);
  });

  it('without a resume point, reports the head the master announces as a reset, then resumes from it', async () => {
    const server = await startServer();
    server.change('inserted', 'a'); // made before this visit: only a reset can tell the cache
    server.change('inserted', 'b');
    const ids: string[] = [];
    const { stream, events, listen } = open(server.url, { onEventId: (id) => ids.push(id) });
    listen();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: '2' }]));
    expect(stream.lastEventId).toBe('2');
    expect(ids).toEqual(['2']); // stored as the resume point

    server.dropAll();
    server.change('deleted', 'a');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events[1]).toEqual({ kind: 'deleted', id: 'a', eventId: '3' });
    expect(server.requests).toEqual(['/api/items/events', '/api/items/events?since=2']);
  });

  it('without a resume point and a master that announces no head, delivers the first event as a reset', async () => {
    const server = await startServer({ announceHead: false });
    const { stream, events, listen } = open(server.url);
    listen();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    server.change('inserted', 'a');
    server.change('updated', 'a');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events).toEqual([
      { kind: 'reset', eventId: '1' },
      { kind: 'updated', id: 'a', eventId: '2' },
    ]);
  });

  it('a heartbeat keeps a quiet connection open and reaches no listener; silence for twice the advertised interval means reconnect with since', async () => {
    const records: LogRecord[] = [];
    configureLogging({ filter: 'vantage-live:stream=debug', sink: (r) => records.push(r) });
    const heartbeats = () => records.filter((r) => r.message === 'heartbeat').length;
    const env = new ManualEnv();
    const server = await startServer({ heartbeatMs: 1000 });
    server.change('inserted', 'a');
    const { stream, events, listen } = open(server.url, { env });
    listen();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'reset', eventId: '1' }]));
    expect(heartbeats()).toBe(1); // the one the connection opens with: interval 1000, so 2000 of silence is death

    env.advance(1500);
    server.raw(heartbeatFrame(1000));
    await vi.waitFor(() => expect(heartbeats()).toBe(2));
    env.advance(1500); // 3000 since the connect, 1500 since the heartbeat
    expect(stream.state).toBe('open');
    expect(server.requests).toHaveLength(1);

    env.advance(500); // 2000 of silence
    expect(stream.state).toBe('connecting');
    const backoff = env.nextTimerAt;
    expect(backoff).toBeDefined();
    env.advance((backoff ?? 0) - env.time);
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(server.requests).toEqual(['/api/items/events', '/api/items/events?since=1']);
    expect(events).toEqual([{ kind: 'reset', eventId: '1' }]); // heartbeats never became events
  });

  it('heartbeatTimeoutMs overrides the advertised interval', async () => {
    const env = new ManualEnv();
    const server = await startServer({ heartbeatMs: 1000 });
    const { stream, events, listen } = open(server.url, { env, heartbeatTimeoutMs: 10_000 });
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(1));
    env.advance(9_999);
    expect(stream.state).toBe('open');
    env.advance(1);
    expect(stream.state).toBe('connecting');
  });

  it('back online, a stream waiting out its backoff reconnects at once', async () => {
    const server = await startServer();
    server.failNext(1);
    const env = new ManualEnv();
    const online = new Set<() => void>();
    const signal: OnlineSignal = (fn) => {
      online.add(fn);
      return () => online.delete(fn);
    };
    const backoff = { baseMs: 60_000, capMs: 60_000 };
    const { stream, events, listen } = open(server.url, { env, online: signal, backoff, heartbeatTimeoutMs: 0 });
    listen();
    expect(online.size).toBe(1);
    await vi.waitFor(() => expect(env.nextTimerAt).toBe(env.time + 30_000)); // failed, waiting out its backoff
    const before = env.time;

    for (const fn of online) fn();
    await vi.waitFor(() => expect(stream.state).toBe('open'));
    expect(env.time).toBe(before); // no time passed
    expect(env.nextTimerAt).toBeUndefined(); // the backoff timer is gone
    expect(server.requests).toHaveLength(2);
    await vi.waitFor(() => expect(events).toHaveLength(1));

    for (const fn of online) fn(); // online while open: nothing to skip
    expect(stream.state).toBe('open');
    stream.close();
    expect(online.size).toBe(0);
  });

  it('logs connect, open, event, reconnect scheduled and reset at debug', async () => {
    const records: LogRecord[] = [];
    configureLogging({ filter: 'vantage-live:stream=debug', sink: (r) => records.push(r) });
    const server = await startServer();
    const { events, listen } = open(server.url);
    listen();
    await vi.waitFor(() => expect(events).toHaveLength(1)); // the head
    server.change('inserted', 'a');
    await vi.waitFor(() => expect(events).toHaveLength(2));
    server.dropAll();
    server.reset();
    await vi.waitFor(() => expect(events).toHaveLength(3));
    const messages = records.map((r) => r.message);
    for (const m of ['connect', 'open', 'event', 'reconnect scheduled', 'reset']) expect(messages).toContain(m);
    expect(records.every((r) => r.namespace === 'vantage-live:stream' && r.level === 'debug')).toBe(true);
    expect(records.filter((r) => r.message === 'event')[1]?.fields).toMatchObject({ eventId: '1', kind: 'inserted', id: 'a' });
    expect(records.find((r) => r.message === 'reconnect scheduled')?.fields).toMatchObject({ delay: 0 });
  });

  it('throws a clear error when there is no EventSource', () => {
    vi.stubGlobal('EventSource', undefined);
    try {
      expect(() => new SseLiveStream('http://127.0.0.1:1/events')).toThrow(/no EventSource.*opts\.EventSource/);
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

// ---------------------------------------------------------------------------

describe('NodeEventSource (test support)', () => {
  function rawServer(handler: (req: IncomingMessage, res: ServerResponse) => void) {
    return startServer().then((s) => {
      s.rawHandler = handler;
      return s;
    });
  }

  it('parses multi-line data, CR/LF/CRLF endings split across chunks, comments, BOM, id and event fields', async () => {
    const server = await rawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      const chunks = [
        '\uFEFF: comment\n',
        'data: line one\r',
        '\ndata:line two\r\nid: 7\n',
        '\n',
        'event: custom\rdata:  two spaces\r\r',
        'data\n\n', // field with no colon: empty data line
        'id: 8\nevent: nothing\n\n', // no data: not dispatched, but sets the last id
        'data: after\nretry: 15\nretry: x\n\n',
        'data: unfinished',
      ];
      let i = 0;
      const write = () => {
        const c = chunks[i++];
        if (c === undefined) return;
        res.write(c);
        setImmediate(write);
      };
      write();
    });
    const es = new NodeEventSource(`${server.base}/raw`);
    const got: Array<{ type: string; data: string; lastEventId: string }> = [];
    const record = (e: Event) => {
      const m = e as MessageEvent<string>;
      got.push({ type: m.type, data: m.data, lastEventId: m.lastEventId });
    };
    es.onmessage = record;
    es.addEventListener('custom', record);
    let opened = false;
    es.onopen = () => {
      opened = true;
    };
    try {
      await vi.waitFor(() => expect(got).toHaveLength(4));
      expect(opened).toBe(true);
      expect(es.readyState).toBe(NodeEventSource.OPEN);
      expect(got).toEqual([
        { type: 'message', data: 'line one\nline two', lastEventId: '7' },
        { type: 'custom', data: ' two spaces', lastEventId: '7' },
        { type: 'message', data: '', lastEventId: '7' },
        { type: 'message', data: 'after', lastEventId: '8' },
      ]);
      expect(es.reconnectionTime).toBe(15);
    } finally {
      es.close();
    }
    expect(es.readyState).toBe(NodeEventSource.CLOSED);
  });

  it('reconnects on its own after the stream ends, sending Last-Event-ID, and drops an unfinished event', async () => {
    const headers: Array<string | undefined> = [];
    const server = await rawServer((req, res) => {
      headers.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (headers.length === 1) res.end('retry: 1\nid: 3\ndata: first\n\ndata: cut off');
      else res.write('data: second\n\n');
    });
    const es = new NodeEventSource(`${server.base}/raw`);
    const data: string[] = [];
    const states: number[] = [];
    es.onmessage = (e) => data.push(String(e.data));
    es.onerror = () => states.push(es.readyState);
    try {
      await vi.waitFor(() => expect(data).toEqual(['first', 'second']));
      expect(headers).toEqual([undefined, '3']);
      expect(states).toEqual([NodeEventSource.CONNECTING]);
    } finally {
      es.close();
    }
  });

  it('fails the connection for good on a non-200 status or a wrong content type', async () => {
    let calls = 0;
    const server = await rawServer((req, res) => {
      calls++;
      if (req.url?.endsWith('?json')) res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else res.writeHead(500).end();
    });
    for (const suffix of ['', '?json']) {
      const es = new NodeEventSource(`${server.base}/raw${suffix}`, { reconnectMs: 1 });
      let errors = 0;
      es.onerror = () => errors++;
      await vi.waitFor(() => expect(errors).toBe(1));
      expect(es.readyState).toBe(NodeEventSource.CLOSED);
    }
    expect(calls).toBe(2);
  });
});
