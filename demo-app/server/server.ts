import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { handleAdmin } from './admin.js';
import { firstPresent, handleApi } from './api.js';
import { Chaos } from './chaos.js';
import type { Master } from './context.js';
import { HttpError, notFound } from './errors.js';
import { FeedHub } from './feed.js';
import { parseTarget, sendError } from './http.js';
import { assertWriteOrigin, defaultOrigins, setCorsHeaders } from './origin.js';
import { seedProducts } from './seed.js';
import { serveWs } from './socket.js';
import { serveStatic } from './static.js';
import { Store } from './store.js';
import { isTableName } from './validate.js';

export interface MasterOptions {
  dbPath: string;
  port?: number;
  host?: string;
  seed?: boolean;
  seedRows?: number;
  chaos?: boolean;
  staticDir?: string;
  idempotencyTtlMs?: number;
  maxBodyBytes?: number;
  allowedOrigins?: string[];
  heartbeatMs?: number;
  eventRetention?: number;
}

export interface RunningMaster {
  url: string;
  port: number;
  close(): Promise<void>;
}

// Connections that ignore a graceful shutdown are cut after this long.
const SHUTDOWN_GRACE_MS = 2000;

function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

// Waits out injected latency; false when the server closed meanwhile.
async function injectLatency(ctx: Master): Promise<boolean> {
  const ms = ctx.chaos.latency();
  if (ms > 0) await delay(ms);
  return !ctx.isClosed();
}

async function route(req: IncomingMessage, res: ServerResponse, ctx: Master): Promise<void> {
  const { segments, query } = parseTarget(req.url);
  const [head, ...rest] = segments;
  setCorsHeaders(req, res, ctx.allowedOrigins);
  if (head === 'api') {
    if (ctx.chaos.refusing()) return void req.socket.destroy();
    if (!(await injectLatency(ctx))) return void req.socket.destroy();
    assertWriteOrigin(req, ctx.allowedOrigins);
    return handleApi(req, res, ctx, rest, query);
  }
  if (head === 'admin') {
    assertWriteOrigin(req, ctx.allowedOrigins);
    return handleAdmin(req, res, ctx, rest);
  }
  if (ctx.staticDir !== undefined) return serveStatic(req, res, ctx.staticDir, segments);
  throw notFound();
}

function answerError(res: ServerResponse, err: unknown): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  if (err instanceof HttpError) {
    sendError(res, err);
    return;
  }
  console.error('vantage-live master: unexpected error', err);
  sendError(res, new HttpError(500, 'internal', 'internal server error'));
}

function refuseUpgrade(socket: Duplex, status: string): void {
  socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
}

/** Starts the reference master: the remote database the demo and the client tests talk to. */
export async function startMaster(opts: MasterOptions): Promise<RunningMaster> {
  const host = opts.host ?? '127.0.0.1';
  const store = new Store(opts.dbPath, {
    eventRetention: opts.eventRetention ?? 10_000,
    idempotencyTtlMs: opts.idempotencyTtlMs ?? 24 * 60 * 60 * 1000,
  });
  if (opts.seed === true || (opts.seedRows ?? 0) > 0) {
    seedProducts(store, { sample: opts.seed === true, rows: opts.seedRows ?? 0 });
  }
  const hub = new FeedHub(store);
  let closed = false;
  const ctx: Master = {
    store,
    hub,
    chaos: new Chaos((paused) => hub.setPaused(paused)),
    stats: { writes: 0, replays: 0 },
    chaosEnabled: opts.chaos === true,
    staticDir: opts.staticDir,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    allowedOrigins: new Set(),
    isClosed: () => closed,
  };

  const server = createServer((req, res) => {
    route(req, res, ctx).catch((err: unknown) => answerError(res, err));
  });
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    void (async () => {
      const { segments, query } = parseTarget(req.url);
      const [api, table, ws, ...extra] = segments;
      if (api !== 'api' || ws !== 'ws' || table === undefined || extra.length > 0) return refuseUpgrade(socket, '404 Not Found');
      if (!isTableName(table)) return refuseUpgrade(socket, '400 Bad Request');
      if (ctx.chaos.refusing()) return void socket.destroy();
      if (!(await injectLatency(ctx))) return void socket.destroy();
      wss.handleUpgrade(req, socket, head, (client) => {
        serveWs(client, hub, table, firstPresent(query.get('since'), query.get('lastEventId')), ctx.heartbeatMs);
      });
    })().catch(() => refuseUpgrade(socket, '400 Bad Request'));
  });

  let port: number;
  try {
    port = await listen(server, opts.port ?? 0, host);
  } catch (err) {
    store.close();
    throw err;
  }
  ctx.allowedOrigins = new Set(opts.allowedOrigins ?? defaultOrigins(host, port));

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      hub.closeAll();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
      await stopped;
      clearTimeout(force);
      wss.close();
      store.close();
    })();
    return closing;
  };

  return { url: `http://${hostForUrl(host)}:${port}`, port, close };
}
