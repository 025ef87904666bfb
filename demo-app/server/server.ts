import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { WebSocketServer } from 'ws';
import { handleAdmin } from './admin.js';
import { assertAdmin, newAdminToken } from './admin-token.js';
import { firstPresent, handleApi } from './api.js';
import { Auth, OPEN_CALLER, owners } from './auth/auth.js';
import { handleAuth } from './auth/routes.js';
import { SessionStore } from './auth/sessions.js';
import { usersProblem } from './auth/users.js';
import type { Users } from './auth/users.js';
import { Chaos } from './chaos.js';
import type { Master } from './context.js';
import { HttpError, notFound } from './errors.js';
import { FeedHub } from './feed.js';
import type { FeedLimits } from './feed.js';
import { parseTarget, sendError } from './http.js';
import { DEFAULT_LIMITS, limitConnections, timeoutOptions } from './limits.js';
import type { ConnectionLimits } from './limits.js';
import { assertHost, assertOrigin, audience, setCorsHeaders } from './origin.js';
import { DEFAULT_CSP, setSecurityHeaders } from './security-headers.js';
import { seedEveryOwner } from './seed.js';
import { serveWs } from './socket.js';
import { serveStatic } from './static.js';
import { openStorage } from './storage/open.js';
import type { Storage } from './storage/types.js';
import { isTableName } from './validate.js';

export interface MasterOptions {
  /** The SQLite file to keep everything in (the embedded default). */
  dbPath?: string;
  /**
   * A PostgreSQL connection string (`postgres://user@host:port/db`): keep
   * everything there instead of `dbPath`. Any number of masters may share one
   * database; each one's change feed carries every master's writes.
   */
  pg?: string;
  port?: number;
  host?: string;
  seed?: boolean;
  seedRows?: number;
  chaos?: boolean;
  staticDir?: string;
  /** How long an Idempotency-Key is remembered (default 24 h). */
  idempotencyTtlMs?: number;
  /** Keys remembered in total / per client address; past them the oldest go first. */
  idempotencyMaxKeys?: number;
  idempotencyMaxKeysPerClient?: number;
  maxBodyBytes?: number;
  /** Take batches (`POST /api/:table/_batch`, default true); false answers them as a master from before batches would (405, not advertised). */
  batches?: boolean;
  /** Page origins that may write and open feeds besides the server's own (e.g. a dev server's). */
  allowedOrigins?: string[];
  /** Host header values (`name:port`) to answer besides the server's own names and those of `allowedOrigins`. */
  allowedHosts?: string[];
  /** The token `/admin` requires (`Authorization: Bearer`); generated when absent. */
  adminToken?: string;
  /** Content-Security-Policy of served static files (default: same origin only, nothing inline). */
  contentSecurityPolicy?: string;
  /** Connection caps and request timeouts; defaults in limits.ts. */
  limits?: Partial<ConnectionLimits>;
  heartbeatMs?: number;
  eventRetention?: number;
  /** Change-feed backlog cap and per-connection buffer; defaults in feed.ts. */
  feedLimits?: Partial<FeedLimits>;
  /**
   * Auth mode: every `/api` request needs a session from `POST /auth/login`,
   * and each user reads and writes only their own rows. Absent: open, as the
   * demo needs. See docs/protocol.md, "Auth".
   */
  auth?: AuthOptions;
  /** The master's clock in ms since the epoch (session expiry, idempotency retention); default Date.now. */
  now?: () => number;
}

export interface AuthOptions {
  /** Who may sign in: user name → password. */
  users: Users;
  /** How long a session lasts from login (default 12 h). */
  sessionTtlMs?: number;
  /** Live sessions kept per user; a login past it ends that user's oldest (default 100). */
  maxSessionsPerUser?: number;
}

/** How long a session lasts when `sessionTtlMs` is not given. */
export const DEFAULT_SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export interface RunningMaster {
  url: string;
  port: number;
  /** Send as `Authorization: Bearer <adminToken>` to `/admin/*`. */
  adminToken: string;
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
  setSecurityHeaders(res, undefined);
  assertHost(req, ctx.audience);
  const { segments, query } = parseTarget(req.url);
  const [head, ...rest] = segments;
  if (head !== 'api' && head !== 'admin' && head !== 'auth') setSecurityHeaders(res, ctx.pageCsp);
  setCorsHeaders(req, res, ctx.audience, { credentials: ctx.auth !== undefined });
  if (head === 'api') {
    if (ctx.chaos.refusing()) return void req.socket.destroy();
    if (!(await injectLatency(ctx))) return void req.socket.destroy();
    assertOrigin(req, ctx.audience);
    return handleApi(req, res, ctx, rest, query);
  }
  if (head === 'auth') {
    // Origin-checked like every write: a foreign page must not sign a browser in as someone else.
    assertOrigin(req, ctx.audience);
    return handleAuth(req, res, ctx, rest);
  }
  if (head === 'admin') {
    assertOrigin(req, ctx.audience);
    // A CORS preflight carries no credentials; it learns only the Allow list.
    if (req.method !== 'OPTIONS') assertAdmin(req, ctx.adminToken, ctx.chaosEnabled);
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

// The reason phrases of the statuses an upgrade is refused with.
const UPGRADE_REFUSALS: Record<number, string> = {
  400: '400 Bad Request',
  401: '401 Unauthorized',
  403: '403 Forbidden',
  404: '404 Not Found',
};

function authFrom(opts: MasterOptions, storage: Storage, now: () => number): Auth | undefined {
  if (opts.auth === undefined) return undefined;
  const problem = usersProblem(opts.auth.users);
  if (problem !== undefined) throw new Error(problem);
  const ttlMs = opts.auth.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
  if (!(Number.isSafeInteger(ttlMs) && ttlMs > 0)) throw new Error(`sessionTtlMs must be a positive integer, got ${ttlMs}`);
  const sessions = new SessionStore(storage.sessions, { ttlMs, now, maxPerUser: opts.auth.maxSessionsPerUser ?? 100 });
  return new Auth(opts.auth.users, sessions, ttlMs);
}

/** Starts the reference master: the remote database the demo and the client tests talk to. */
export async function startMaster(opts: MasterOptions): Promise<RunningMaster> {
  const host = opts.host ?? '127.0.0.1';
  if (opts.pg === undefined && opts.dbPath === undefined) throw new Error('startMaster needs dbPath (SQLite) or pg (a PostgreSQL URL)');
  const storage = await openStorage(opts.pg !== undefined ? { kind: 'postgres', url: opts.pg } : { kind: 'sqlite', path: opts.dbPath as string }, {
    eventRetention: opts.eventRetention ?? 10_000,
    idempotencyTtlMs: opts.idempotencyTtlMs ?? 24 * 60 * 60 * 1000,
    idempotencyMaxKeys: opts.idempotencyMaxKeys ?? 100_000,
    idempotencyMaxKeysPerClient: opts.idempotencyMaxKeysPerClient ?? 10_000,
  });
  const now = opts.now ?? Date.now;
  let auth: Auth | undefined;
  try {
    auth = authFrom(opts, storage, now);
    if (opts.seed === true || (opts.seedRows ?? 0) > 0) {
      await seedEveryOwner(storage, owners(auth), { sample: opts.seed === true, rows: opts.seedRows ?? 0 });
    }
  } catch (err) {
    await storage.close();
    throw err;
  }
  const hub = new FeedHub(storage, opts.feedLimits, await storage.latestEventId());
  // Every committed event, from this master or (Postgres) another, reaches the feeds from here.
  storage.follow((events) => hub.publish(...events));
  let closed = false;
  const ctx: Master = {
    storage,
    hub,
    chaos: new Chaos((paused) => hub.setPaused(paused)),
    stats: { writes: 0, replays: 0 },
    chaosEnabled: opts.chaos === true,
    staticDir: opts.staticDir,
    maxBodyBytes: opts.maxBodyBytes ?? 1024 * 1024,
    batches: opts.batches ?? true,
    heartbeatMs: opts.heartbeatMs ?? 15_000,
    audience: { origins: new Set(), hosts: new Set() },
    adminToken: opts.adminToken ?? newAdminToken(),
    pageCsp: opts.contentSecurityPolicy ?? DEFAULT_CSP,
    auth,
    now,
    isClosed: () => closed,
  };

  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const server = createServer(timeoutOptions(limits), (req, res) => {
    route(req, res, ctx).catch((err: unknown) => answerError(res, err));
  });
  limitConnections(server, limits);
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    void (async () => {
      // Checked here, before socket.ts takes the connection over.
      assertHost(req, ctx.audience);
      assertOrigin(req, ctx.audience, { upgrade: true });
      const { segments, query } = parseTarget(req.url);
      const [api, table, ws, ...extra] = segments;
      if (api !== 'api' || ws !== 'ws' || table === undefined || extra.length > 0) return refuseUpgrade(socket, '404 Not Found');
      if (!isTableName(table)) return refuseUpgrade(socket, '400 Bad Request');
      if (ctx.chaos.refusing()) return void socket.destroy();
      if (!(await injectLatency(ctx))) return void socket.destroy();
      // After the wait, so a session that ended meanwhile does not get in.
      const caller = ctx.auth === undefined ? OPEN_CALLER : await ctx.auth.authenticate(req, query);
      wss.handleUpgrade(req, socket, head, (client) => {
        const resumeFrom = firstPresent(query.get('since'), query.get('lastEventId'));
        serveWs(client, hub, { table, owner: caller.owner }, resumeFrom, ctx.heartbeatMs, caller.sessionAlive);
      });
    })().catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 400;
      refuseUpgrade(socket, UPGRADE_REFUSALS[status] ?? '400 Bad Request');
    });
  });

  let port: number;
  try {
    port = await listen(server, opts.port ?? 0, host);
  } catch (err) {
    await storage.close();
    throw err;
  }
  ctx.audience = audience(host, port, opts.allowedOrigins, opts.allowedHosts);

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
      await storage.close();
    })();
    return closing;
  };

  return { url: `http://${hostForUrl(host)}:${port}`, port, adminToken: ctx.adminToken, close };
}
