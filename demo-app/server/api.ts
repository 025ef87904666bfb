import type { IncomingMessage, ServerResponse } from 'node:http';
import { OPEN_CALLER } from './auth/auth.js';
import type { Caller } from './auth/auth.js';
import type { Master } from './context.js';
import { HttpError, methodNotAllowed, notFound } from './errors.js';
import { parseJsonObject, readBody, sendJson } from './http.js';
import { fingerprint, idempotencyKey } from './idempotency.js';
import type { KeyedWrite } from './idempotency.js';
import { serveSse } from './sse.js';
import { assertRowId, assertTableName, positiveIntParam } from './validate.js';
import type { Owner, Write } from './storage/types.js';
import { clearTable, createRow, deleteRow, patchRow, putRow } from './writes.js';
import { etagHeader, ifMatch, precondition } from './versions.js';

const COLLECTION_METHODS = ['GET', 'POST', 'DELETE', 'OPTIONS'];
const ROW_METHODS = ['GET', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'];
const DEFAULT_IPP = 50;
const MAX_IPP = 1000;
// Keeps page * ipp well inside SQLite's and Postgres's integer OFFSET.
const MAX_PAGE = 1_000_000_000;

/** The first non-empty value: feeds accept the resume point under several names. */
export function firstPresent(...values: (string | string[] | null | undefined)[]): string | undefined {
  for (const value of values) {
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/** Handles `/api/...`; `path` is what follows `api`. */
export async function handleApi(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Master,
  path: string[],
  query: URLSearchParams,
): Promise<void> {
  const [table, id, ...extra] = path;
  if (table === undefined || extra.length > 0) throw notFound();
  assertTableName(table);
  const method = req.method ?? 'GET';
  const allow = id === undefined ? COLLECTION_METHODS : ROW_METHODS;
  // A CORS preflight carries no credentials; it learns only the Allow list.
  if (method === 'OPTIONS') {
    sendJson(res, 204, null, { Allow: allow.join(', ') });
    return;
  }
  const feed = method === 'GET' && id === 'events';
  // EventSource cannot set headers, so the feed also takes `?token=`.
  const caller: Caller = ctx.auth === undefined ? OPEN_CALLER : await ctx.auth.authenticate(req, feed ? query : undefined);

  // The change feed is exempt from injected failures: those simulate a flaky
  // API, and the feed has its own chaos (pauseFeed, refuseForMs).
  if (feed) {
    const resumeFrom = firstPresent(req.headers['last-event-id'], query.get('since'), query.get('lastEventId'));
    serveSse(req, res, ctx.hub, { table, owner: caller.owner }, resumeFrom, ctx.heartbeatMs, caller.sessionAlive);
    return;
  }
  if (method === 'GET' && id === 'ws') {
    throw new HttpError(426, 'upgrade_required', 'this endpoint speaks WebSocket only', { Upgrade: 'websocket' });
  }
  if (!allow.includes(method)) throw methodNotAllowed(method, allow);

  const failure = ctx.chaos.takeFailure(method !== 'GET');
  if (failure !== undefined) {
    throw new HttpError(failure.status, 'injected_failure', 'failure injected by chaos settings', {
      'Retry-After': String(failure.retryAfterSec),
    });
  }

  if (id !== undefined) assertRowId(id);
  if (method === 'GET') {
    if (id === undefined) await listRows(res, ctx, caller.owner, table, query);
    else await getRow(res, ctx, caller.owner, table, id);
    return;
  }
  await write(req, res, ctx, caller.owner, method, table, id);
}

async function listRows(res: ServerResponse, ctx: Master, owner: Owner, table: string, query: URLSearchParams): Promise<void> {
  const page = positiveIntParam(query.get('page'), 'page', 1, MAX_PAGE);
  const ipp = positiveIntParam(query.get('ipp'), 'ipp', DEFAULT_IPP, MAX_IPP);
  const { rows, total } = await ctx.storage.listRows(owner, table, (page - 1) * ipp, ipp);
  sendJson(res, 200, { rows, page, ipp, total });
}

async function getRow(res: ServerResponse, ctx: Master, owner: Owner, table: string, id: string): Promise<void> {
  const row = await ctx.storage.getRow(owner, table, id);
  if (row === undefined) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
  sendJson(res, 200, row, etagHeader(row));
}

async function write(
  req: IncomingMessage,
  res: ServerResponse,
  ctx: Master,
  owner: Owner,
  method: string,
  table: string,
  id: string | undefined,
): Promise<void> {
  const key = idempotencyKey(req);
  const body = method === 'DELETE' ? {} : parseJsonObject(await readBody(req, ctx.maxBodyBytes));
  // Keys are not scoped by client address: a client whose address changed
  // between a lost answer and its retry must still get the replay. They are
  // scoped by owner (commit.ts), so users never see each other's answers.
  const keyed: KeyedWrite | undefined =
    key === undefined ? undefined : { key, fingerprint: fingerprint(method, table, id, body), client: req.socket.remoteAddress ?? '' };
  if (ctx.isClosed()) {
    req.socket.destroy();
    return;
  }
  const writeOf = (): Write => {
    if (id === undefined) return method === 'POST' ? createRow(table, body) : clearTable(table);
    if (method === 'PUT') return putRow(table, id, body);
    if (method === 'PATCH') return patchRow(table, id, body);
    return deleteRow(table, id);
  };

  // The storage tells the change feed of the write's event once it commits.
  // A replay answers as the first call did, whatever If-Match says now: the key is looked up before `decide`.
  const tags = id === undefined ? undefined : ifMatch(req);
  const committed = await ctx.storage.commit(owner, precondition(writeOf(), tags), keyed, ctx.now());
  if (committed.replayed) {
    ctx.stats.replays += 1;
    sendJson(res, committed.status, committed.body, { ...etagHeader(committed.body), 'Idempotent-Replayed': 'true' });
    return;
  }
  ctx.stats.writes += 1;
  if (ctx.chaos.takeDrop()) {
    req.socket.destroy();
    return;
  }
  sendJson(res, committed.status, committed.body, etagHeader(committed.body));
}
