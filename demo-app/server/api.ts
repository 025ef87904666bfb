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
import type { BatchItem, Committed, Owner, Write } from './storage/types.js';
import { clearTable, createRow, deleteRow, patchRow, putRow } from './writes.js';
import { etagHeader, ifMatch, precondition } from './versions.js';

/** `POST /api/:table/_batch` (docs/protocol.md, "Batches"): not a row id, since rows take no POST. */
export const BATCH_SEGMENT = '_batch';
/** The most ops one batch may carry. */
export const MAX_BATCH_OPS = 500;
const BATCH_METHODS = ['POST', 'OPTIONS'];
/** Sent on list answers and the collection's OPTIONS: this master takes batches of up to this many ops. */
const ADVERTISED = { 'Vantage-Batch': String(MAX_BATCH_OPS) };
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
  const batch = ctx.batches && id === BATCH_SEGMENT;
  const allow = batch ? BATCH_METHODS : id === undefined ? COLLECTION_METHODS : ROW_METHODS;
  // A CORS preflight carries no credentials; it learns only the Allow list.
  if (method === 'OPTIONS') {
    sendJson(res, 204, null, { Allow: allow.join(', '), ...((id === undefined || batch) && ctx.batches ? ADVERTISED : {}) });
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

  if (batch) return writeBatch(req, res, ctx, caller.owner, table);
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
  sendJson(res, 200, { rows, page, ipp, total }, ctx.batches ? ADVERTISED : {});
}

async function getRow(res: ServerResponse, ctx: Master, owner: Owner, table: string, id: string): Promise<void> {
  const row = await ctx.storage.getRow(owner, table, id);
  if (row === undefined) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
  sendJson(res, 200, row, etagHeader(row));
}

function writeOf(method: string, table: string, id: string | undefined, body: Record<string, unknown>): Write {
  if (id === undefined) return method === 'POST' ? createRow(table, body) : clearTable(table);
  if (method === 'PUT') return putRow(table, id, body);
  if (method === 'PATCH') return patchRow(table, id, body);
  return deleteRow(table, id);
}

/**
 * A batch: `{ops: [{method, id?, body?, key?, ifMatch?}]}`, applied in order in
 * one transaction where the storage can (SQLite), each op as its own request
 * would be, with its own key. Answers `{results: [{status, body, replayed?}]}`,
 * one per op, each what that request would have answered; a refused op does
 * not stop the others. An op malformed on its own (a bad method, id or key) is
 * refused alone, with a 400 result.
 */
async function writeBatch(req: IncomingMessage, res: ServerResponse, ctx: Master, owner: Owner, table: string): Promise<void> {
  const raw = parseJsonObject(await readBody(req, ctx.maxBodyBytes)).ops;
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_BATCH_OPS) {
    throw new HttpError(400, 'invalid_batch', `a batch is {"ops": [...]} with 1 to ${MAX_BATCH_OPS} ops`);
  }
  const client = req.socket.remoteAddress ?? '';
  const items = raw.map((op): BatchItem | HttpError => {
    try {
      return batchItem(op, table, client);
    } catch (err) {
      if (err instanceof HttpError) return err;
      throw err;
    }
  });
  if (ctx.isClosed()) {
    req.socket.destroy();
    return;
  }
  const valid = items.filter((item): item is BatchItem => !(item instanceof HttpError));
  const now = ctx.now();
  const committed = ctx.storage.commitBatch
    ? await ctx.storage.commitBatch(owner, valid, now)
    : await commitOneByOne(ctx, owner, valid, now);
  let next = 0;
  const results = items.map((item) => {
    const result = item instanceof HttpError ? item : committed[next++]!;
    if (result instanceof HttpError) return { status: result.status, body: { error: { code: result.code, message: result.message }, ...result.extra } };
    if (result.replayed) ctx.stats.replays += 1;
    else ctx.stats.writes += 1;
    return result.replayed ? { status: result.status, body: result.body, replayed: true } : { status: result.status, body: result.body };
  });
  if (ctx.chaos.takeDrop()) {
    req.socket.destroy();
    return;
  }
  sendJson(res, 200, { results });
}

// A storage without batches: each op in its own transaction, still exactly once per key.
async function commitOneByOne(ctx: Master, owner: Owner, items: BatchItem[], now: number): Promise<Array<Committed | HttpError>> {
  const out: Array<Committed | HttpError> = [];
  for (const { write, keyed } of items) {
    out.push(await ctx.storage.commit(owner, write, keyed, now).catch((err: unknown) => {
      if (err instanceof HttpError) return err;
      throw err;
    }));
  }
  return out;
}

const BATCH_OP_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

/** One op of a batch as the write its own request would make; an HttpError when it is malformed. */
function batchItem(op: unknown, table: string, client: string): BatchItem {
  if (typeof op !== 'object' || op === null || Array.isArray(op)) throw new HttpError(400, 'invalid_batch_op', 'each op is an object');
  const { method, id, body: rawBody, key, ifMatch: tags } = op as Record<string, unknown>;
  if (typeof method !== 'string' || !BATCH_OP_METHODS.includes(method)) {
    throw new HttpError(400, 'invalid_batch_op', `an op's method is one of ${BATCH_OP_METHODS.join(', ')}`);
  }
  if (id !== undefined) {
    if (typeof id !== 'string') throw new HttpError(400, 'invalid_id', 'an op\'s id is a string');
    assertRowId(id);
  }
  if ((method === 'PUT' || method === 'PATCH') && id === undefined) throw new HttpError(400, 'invalid_batch_op', `${method} needs an id`);
  if (method === 'POST' && id !== undefined) throw new HttpError(400, 'invalid_batch_op', 'POST creates a row: its id goes in the body');
  const body = method === 'DELETE' ? {} : rawBody;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'invalid_json', `${method} needs a JSON object body`);
  if (key !== undefined && typeof key !== 'string') throw new HttpError(400, 'invalid_idempotency_key', 'an op\'s key is a string');
  const checkedKey = idempotencyKey(key);
  if (tags !== undefined && typeof tags !== 'string') throw new HttpError(400, 'invalid_batch_op', 'an op\'s ifMatch is a string of ETags');
  const row = body as Record<string, unknown>;
  const keyed = checkedKey === undefined ? undefined : { key: checkedKey, fingerprint: fingerprint(method, table, id, row), client };
  const write = writeOf(method, table, id, row);
  return { write: precondition(write, id === undefined ? undefined : ifMatch(tags)), keyed };
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
  const key = idempotencyKey(req.headers['idempotency-key']);
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
  // The storage tells the change feed of the write's event once it commits.
  // A replay answers as the first call did, whatever If-Match says now: the key is looked up before `decide`.
  const tags = id === undefined ? undefined : ifMatch(req.headers['if-match']);
  const committed = await ctx.storage.commit(owner, precondition(writeOf(method, table, id, body), tags), keyed, ctx.now());
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
