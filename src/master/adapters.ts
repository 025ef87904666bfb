import { idPathSegment } from '../ids.js';
import type { Id, PageRequest, Row } from '../types.js';

/**
 * One HTTP request of a RestAdapter, relative to the table's URL. RestTable
 * sends it: credentials, `accept`, the timeout, `redirect: 'manual'` and the
 * reading of the answer's status are its job, not the adapter's.
 */
export interface RestCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Appended to the table's URL: "" , "/<id>" or "?<query>". */
  path: string;
  headers?: Record<string, string>;
  body?: Row;
}

/** An answer as an adapter reads it: the body already parsed (undefined when it is empty or not JSON). */
export interface RestAnswer {
  status: number;
  headers: Headers;
  json: unknown;
  text: string;
}

/** What a write carries besides its row. */
export interface WriteContext {
  /** The queue's key for this write: the same on every retry. */
  idempotencyKey?: string;
  /** The row's version the write was made against (an ETag), when one is known: the adapter sends it as a precondition if its backend checks one. */
  version?: string;
}

/** A failure answer, as the adapter reads it; RestTable turns it into a typed error. */
export interface RestFailure {
  /** The backend's own error code (kept as MasterRejectedError.masterCode). */
  code: string;
  message: string;
  /** The status the failure means, when the backend says it another way (json-server answers a duplicate id with a 500). */
  status?: number;
  /** Worth a retry; default: 408, 429 and 5xx are. */
  transient?: boolean;
}

/**
 * What a write whose answer was lost (a timeout, a dropped connection) turns
 * into once the queue sends it again. Honest per backend: nothing here claims
 * more than the backend keeps.
 */
export interface Delivery {
  /** The backend replays the answer of a retried `Idempotency-Key`: every write is applied exactly once (within its key window). */
  idempotencyKeys: boolean;
  /** Replace, patch and delete carry `If-Match` from a known version, and the backend checks it. */
  ifMatch: boolean;
  /** One line for `info` and logs. */
  summary: string;
}

/**
 * How one kind of REST backend spells a table: its URLs, paging, bodies and
 * errors. RestTable keeps the HTTP itself (fetch, credentials, redirects,
 * timeouts, transient or permanent) in one place; an adapter only says what
 * to send and how to read what comes back.
 */
export interface RestAdapter {
  /** e.g. "vantage", "json-server", "postgrest". */
  readonly name: string;
  readonly delivery: Delivery;
  list(page: PageRequest, idField: string): RestCall;
  /** The rows of a list answer and the table's total row count. */
  readPage(answer: RestAnswer): { rows: Row[]; total: number };
  get(id: Id, idField: string): RestCall;
  /** `row` holds the id when the client chose one. */
  insert(row: Row, w: WriteContext): RestCall;
  replace(id: Id, row: Row, idField: string, w: WriteContext): RestCall;
  patch(id: Id, partial: Row, idField: string, w: WriteContext): RestCall;
  delete(id: Id, idField: string, w: WriteContext): RestCall;
  /** One request that empties the table; without it RestTable deletes the rows one by one. */
  deleteAll?(idField: string, w: WriteContext): RestCall;
  /** The one row of a get or write answer; undefined when the answer holds none (no such row). */
  readRow(answer: RestAnswer): Row | undefined;
  /** The row version the answer carries (default: its `ETag`). */
  readVersion?(answer: RestAnswer): string | undefined;
  readFailure(answer: RestAnswer): RestFailure;
  /** Several writes in one request (docs/protocol.md, "Batches"); only backends that take them have it. */
  batch?: BatchSpelling;
}

/** One write of a batch as the adapter spells it: the call its own request would make. */
export interface BatchCall {
  call: RestCall;
  /** The row the call names (none for an insert). */
  id?: Id;
}

/** How a backend takes batches of writes. */
export interface BatchSpelling {
  /** The one request carrying every write, in order. */
  call(writes: BatchCall[]): RestCall;
  /** Each write's answer, in order, as its own request would have been answered. */
  read(answer: RestAnswer): RestAnswer[];
}

/** The 409 code of the vantage protocol meaning "this Idempotency-Key is still being processed" (docs/protocol.md). */
export const KEY_IN_PROGRESS = 'idempotency_key_in_progress';

const slash = (id: Id) => `/${idPathSegment(id)}`;
const withKey = (w: WriteContext): Record<string, string> => ({
  ...(w.idempotencyKey ? { 'idempotency-key': w.idempotencyKey } : {}),
  ...(w.version ? { 'if-match': w.version } : {}),
});
const messageOf = (answer: RestAnswer) => answer.text.slice(0, 200);

/**
 * The vantage protocol (docs/protocol.md), spoken by the reference master:
 * `?page=&ipp=` answered `{rows, total}`, `Idempotency-Key` replayed, errors
 * as `{error: {code, message}}`. The default adapter.
 */
export const vantageAdapter: RestAdapter = {
  name: 'vantage',
  delivery: {
    idempotencyKeys: true,
    ifMatch: true,
    summary: 'exactly once: the master replays a retried Idempotency-Key (for as long as it keeps keys; an older retry becomes a dead letter, outcome unknown); a write made against a known row version is checked with If-Match',
  },
  list: (p) => ({ method: 'GET', path: `?page=${p.page}&ipp=${p.ipp}` }),
  readPage(answer) {
    const body = answer.json as { rows: Row[]; total: number };
    return { rows: body.rows, total: body.total };
  },
  get: (id) => ({ method: 'GET', path: slash(id) }),
  insert: (row, w) => ({ method: 'POST', path: '', body: row, headers: withKey(w) }),
  replace: (id, row, _f, w) => ({ method: 'PUT', path: slash(id), body: row, headers: withKey(w) }),
  patch: (id, partial, _f, w) => ({ method: 'PATCH', path: slash(id), body: partial, headers: withKey(w) }),
  delete: (id, _f, w) => ({ method: 'DELETE', path: slash(id), headers: withKey(w) }),
  deleteAll: (_f, w) => ({ method: 'DELETE', path: '', headers: withKey(w) }),
  readRow: (answer) => answer.json as Row | undefined,
  readVersion: (answer) => answer.headers.get('etag') ?? undefined,
  readFailure(answer) {
    const error = (answer.json as { error?: { code?: string; message?: string } } | undefined)?.error;
    return {
      code: error?.code ?? `http_${answer.status}`,
      message: error?.message ?? messageOf(answer),
      // 409 for a key still being processed (the IETF Idempotency-Key draft): the first request may yet finish.
      transient: error?.code === KEY_IN_PROGRESS ? true : undefined,
    };
  },
  batch: {
    call: (writes) => ({
      method: 'POST',
      path: '/_batch',
      body: {
        ops: writes.map(({ call, id }) => ({
          method: call.method,
          ...(id === undefined ? {} : { id }),
          ...(call.body === undefined ? {} : { body: call.body }),
          ...(call.headers?.['idempotency-key'] ? { key: call.headers['idempotency-key'] } : {}),
          ...(call.headers?.['if-match'] ? { ifMatch: call.headers['if-match'] } : {}),
        })),
      },
    }),
    read(answer) {
      const results = (answer.json as { results?: Array<{ status: number; body: unknown }> } | undefined)?.results ?? [];
      return results.map(({ status, body }) => {
        const text = body === null || body === undefined ? '' : JSON.stringify(body);
        const version = (body as { _version?: unknown } | null)?._version;
        const headers = new Headers(typeof version === 'number' || typeof version === 'string' ? { etag: `"${version}"` } : {});
        return { status, headers, json: body ?? undefined, text };
      });
    },
  },
};

/**
 * json-server 0.17 (and the many mock and CRUD servers shaped like it):
 * `?_page=&_limit=` answered with a bare array and `X-Total-Count`, rows at
 * `/<id>`. It keeps no idempotency keys and checks no `If-Match`; it answers
 * an insert of an existing id with a 500 "duplicate id", read here as a 409.
 */
export const jsonServerAdapter: RestAdapter = {
  name: 'json-server',
  delivery: {
    idempotencyKeys: false,
    ifMatch: false,
    summary: 'at least once: inserts with a client id are applied once (a retry that finds the same row counts as applied); a retried insertReturnId may add a second row; a retried replace or patch is applied again',
  },
  list: (p) => ({ method: 'GET', path: `?_page=${p.page}&_limit=${p.ipp}` }),
  readPage(answer) {
    const rows = answer.json as Row[];
    const total = Number(answer.headers.get('x-total-count'));
    return { rows, total: Number.isFinite(total) && answer.headers.has('x-total-count') ? total : rows.length };
  },
  get: (id) => ({ method: 'GET', path: slash(id) }),
  insert: (row) => ({ method: 'POST', path: '', body: row }),
  replace: (id, row) => ({ method: 'PUT', path: slash(id), body: row }),
  patch: (id, partial) => ({ method: 'PATCH', path: slash(id), body: partial }),
  delete: (id) => ({ method: 'DELETE', path: slash(id) }),
  readRow: (answer) => answer.json as Row | undefined,
  readFailure(answer) {
    if (answer.status === 500 && /duplicate id/i.test(answer.text)) return { code: 'duplicate_id', message: 'a row with this id exists', status: 409 };
    // A 404 is an empty object: no such row, or no such table in the data file.
    if (answer.status === 404) return { code: 'not_found', message: 'no such row or table' };
    return { code: `http_${answer.status}`, message: messageOf(answer) };
  },
};

/**
 * PostgREST (and Supabase's REST API): `?limit=&offset=` with `Prefer:
 * count=exact` answered with an array and `Content-Range: 0-24/300`, rows
 * addressed by a filter (`?id=eq.<id>`), writes with `Prefer:
 * return=representation`, errors as `{code, message, details, hint}`.
 * PostgREST keeps no idempotency keys and sends no ETags; a duplicate key is
 * a 409 (23505).
 */
export const postgrestAdapter: RestAdapter = {
  name: 'postgrest',
  delivery: {
    idempotencyKeys: false,
    ifMatch: false,
    summary: 'at least once: inserts with a client id are applied once (a retry that finds the same row counts as applied); a retried insertReturnId may add a second row; a retried replace or patch is applied again',
  },
  list: (p, idField) => ({
    method: 'GET',
    path: `?order=${encodeURIComponent(idField)}.asc&limit=${p.ipp}&offset=${(p.page - 1) * p.ipp}`,
    headers: { prefer: 'count=exact' },
  }),
  readPage(answer) {
    const rows = answer.json as Row[];
    // "0-24/300", "*/0", or "0-24/*" when no count was made.
    const total = Number(/\/(\d+)$/.exec(answer.headers.get('content-range') ?? '')?.[1] ?? NaN);
    return { rows, total: Number.isFinite(total) ? total : rows.length };
  },
  get: (id, idField) => ({ method: 'GET', path: byId(idField, id) }),
  insert: (row) => ({ method: 'POST', path: '', body: row, headers: { prefer: 'return=representation' } }),
  // PUT is an upsert of the whole row in PostgREST: the body must name the same key as the filter.
  replace: (id, row, idField) => ({ method: 'PUT', path: byId(idField, id), body: row, headers: { prefer: 'return=representation' } }),
  patch: (id, partial, idField) => ({ method: 'PATCH', path: byId(idField, id), body: partial, headers: { prefer: 'return=representation' } }),
  delete: (id, idField) => ({ method: 'DELETE', path: byId(idField, id) }),
  // PostgREST deletes every row only when asked with a filter that matches them all.
  deleteAll: (idField) => ({ method: 'DELETE', path: `?${encodeURIComponent(idField)}=not.is.null` }),
  readRow: (answer) => (Array.isArray(answer.json) ? (answer.json[0] as Row | undefined) : (answer.json as Row | undefined)),
  readFailure(answer) {
    const body = answer.json as { code?: string; message?: string; details?: string | null } | undefined;
    return {
      code: body?.code ?? `http_${answer.status}`,
      message: body?.message ? `${body.message}${body.details ? ` (${body.details})` : ''}` : messageOf(answer),
    };
  },
};

function byId(idField: string, id: Id): string {
  return `?${encodeURIComponent(idField)}=eq.${encodeURIComponent(id)}`;
}

/** The adapters by name, for configuration by string (the demo's `--backend`). */
export const ADAPTERS: Readonly<Record<string, RestAdapter>> = {
  vantage: vantageAdapter,
  'json-server': jsonServerAdapter,
  postgrest: postgrestAdapter,
};
