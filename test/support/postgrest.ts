/**
 * A PostgREST-compatible server over a real Postgres database, for the
 * PostgREST adapter's tests: PostgREST itself has no npm or Debian package
 * here. It implements only the subset the adapter speaks, as PostgREST's
 * documentation describes it (docs.postgrest.org: "Tables and Views",
 * "Pagination and Count", "Prefer header", "Errors"):
 *
 * - `GET /t?order=c.asc&limit=&offset=` or a `Range: a-b` header; `Prefer:
 *   count=exact` adds the total to `Content-Range` (`0-24/300`, `*\/0`), and a
 *   partial page answers 206; an offset past the end 416 (PGRST103).
 * - horizontal filters `c=eq.v`, `c=is.null`, `c=not.is.null`.
 * - `POST` (one object or an array), `PUT` (upsert of one row named by its
 *   primary key filter: the payload must hold the same key, PGRST115),
 *   `PATCH`, `DELETE`; `Prefer: return=representation` answers the rows as an
 *   array (201 for POST, 200 otherwise), without it 201/204 and no body.
 * - errors as `{code, message, details, hint}`: Postgres' SQLSTATE with
 *   PostgREST's status mapping (23505 and 23503 → 409, 08* and 53* → 503,
 *   other server faults 500, the rest 400), PGRST codes for its own.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';

export interface PostgrestServer {
  /** The API root, e.g. "http://127.0.0.1:40123": a RestTable's apiBase. */
  url: string;
  pool: pg.Pool;
  close(): Promise<void>;
}

interface Failure {
  status: number;
  code: string;
  message: string;
  details?: string | null;
  hint?: string | null;
}

const fail = (status: number, code: string, message: string, details: string | null = null): Failure => ({ status, code, message, details, hint: null });

/** Serves every table of the database's public schema. Creates `products` (id text primary key, server-generated when omitted). */
export async function startPostgrestServer(databaseUrl: string): Promise<PostgrestServer> {
  const pool = new pg.Pool({ connectionString: databaseUrl });
  // float8 comes back as a JS number, like PostgREST's JSON numbers.
  await pool.query(`CREATE TABLE IF NOT EXISTS products (id text PRIMARY KEY DEFAULT gen_random_uuid()::text, name text NOT NULL, price double precision)`);
  const schema = await loadSchema(pool);
  const server: Server = createServer((req, res) => {
    handle(pool, schema, req)
      .then(({ status, headers, body }) => reply(res, status, headers, body))
      .catch((err: unknown) => {
        const f = isFailure(err) ? err : pgFailure(err);
        reply(res, f.status, {}, { code: f.code, details: f.details ?? null, hint: f.hint ?? null, message: f.message });
      });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    pool,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await pool.end();
    },
  };
}

type Schema = Map<string, { columns: Set<string>; key: string }>;

async function loadSchema(pool: pg.Pool): Promise<Schema> {
  const { rows } = await pool.query<{ table_name: string; column_name: string; key: boolean }>(`
    SELECT c.table_name, c.column_name,
      EXISTS (SELECT 1 FROM information_schema.key_column_usage k JOIN information_schema.table_constraints t USING (constraint_name, table_schema, table_name)
              WHERE t.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema AND k.table_name = c.table_name AND k.column_name = c.column_name) AS key
    FROM information_schema.columns c WHERE c.table_schema = 'public'`);
  const schema: Schema = new Map();
  for (const r of rows) {
    const t = schema.get(r.table_name) ?? { columns: new Set<string>(), key: '' };
    t.columns.add(r.column_name);
    if (r.key) t.key = r.column_name;
    schema.set(r.table_name, t);
  }
  return schema;
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body?: unknown;
}

async function handle(pool: pg.Pool, schema: Schema, req: IncomingMessage): Promise<Answer> {
  const url = new URL(req.url ?? '/', 'http://x');
  const name = decodeURIComponent(url.pathname.slice(1));
  const table = schema.get(name);
  if (!table) throw fail(404, 'PGRST205', `Could not find the table 'public.${name}' in the schema cache`);
  const prefer = new Set(String(req.headers.prefer ?? '').split(',').map((p) => p.trim()));
  const representation = prefer.has('return=representation');
  const params: unknown[] = [];
  const column = (c: string) => {
    if (!table.columns.has(c)) throw fail(400, '42703', `column ${name}.${c} does not exist`);
    return `"${c}"`;
  };
  const where = filters(url.searchParams, column, params);

  switch (req.method) {
    case 'GET': {
      const [offset, limit] = range(url.searchParams, req.headers.range);
      const order = url.searchParams.get('order');
      const orderBy = order ? ` ORDER BY ${order.split(',').map((o) => orderTerm(o, column)).join(', ')}` : '';
      const rows = (await pool.query(`SELECT * FROM "${name}"${where}${orderBy}${limit === undefined ? '' : ` LIMIT ${limit}`} OFFSET ${offset}`, params)).rows;
      let total: number | undefined;
      if (prefer.has('count=exact')) total = Number((await pool.query(`SELECT count(*) AS n FROM "${name}"${where}`, params)).rows[0].n);
      if (total !== undefined && offset > total) throw fail(416, 'PGRST103', 'Requested range not satisfiable', `An offset of ${offset} was requested, but there are only ${total} rows.`);
      const span = rows.length ? `${offset}-${offset + rows.length - 1}` : '*';
      const headers = { 'content-range': `${span}/${total ?? '*'}` };
      return { status: total !== undefined && rows.length < total ? 206 : 200, headers, body: rows };
    }
    case 'POST': {
      const payload = await readJson(req);
      const objects = Array.isArray(payload) ? payload : [payload];
      const keys = [...new Set(objects.flatMap((o) => Object.keys(o as object)))];
      if (!keys.length) throw fail(400, 'PGRST102', 'Empty or invalid json');
      for (const k of keys) if (!table.columns.has(k)) throw fail(400, 'PGRST204', `Could not find the '${k}' column of '${name}' in the schema cache`);
      const values = objects.map((o) => `(${keys.map((k) => `$${params.push((o as Record<string, unknown>)[k] ?? null)}`).join(', ')})`);
      const rows = (await pool.query(`INSERT INTO "${name}" (${keys.map(column).join(', ')}) VALUES ${values.join(', ')} RETURNING *`, params)).rows;
      return representation ? { status: 201, headers: { 'content-range': `*/${rows.length}` }, body: rows } : { status: 201, headers: {} };
    }
    case 'PUT': {
      const payload = (await readJson(req)) as Record<string, unknown>;
      const keyFilter = url.searchParams.get(table.key);
      if (!keyFilter?.startsWith('eq.') || [...url.searchParams.keys()].length !== 1) {
        throw fail(405, 'PGRST105', 'Filters must include all and only primary key columns with \'eq\' operators');
      }
      if (Array.isArray(payload) || String(payload[table.key]) !== keyFilter.slice(3)) throw fail(400, 'PGRST115', 'Payload values do not match URL in primary key column(s)');
      const keys = Object.keys(payload);
      for (const k of keys) if (!table.columns.has(k)) throw fail(400, 'PGRST204', `Could not find the '${k}' column of '${name}' in the schema cache`);
      const fresh: unknown[] = [];
      const sets = keys.filter((k) => k !== table.key).map((k) => `${column(k)} = EXCLUDED.${column(k)}`);
      const sql = `INSERT INTO "${name}" (${keys.map(column).join(', ')}) VALUES (${keys.map((k) => `$${fresh.push(payload[k])}`).join(', ')})
        ON CONFLICT ("${table.key}") DO ${sets.length ? `UPDATE SET ${sets.join(', ')}` : 'NOTHING'} RETURNING *`;
      const rows = (await pool.query(sql, fresh)).rows;
      return representation ? { status: 200, headers: {}, body: rows } : { status: 204, headers: {} };
    }
    case 'PATCH': {
      const payload = (await readJson(req)) as Record<string, unknown>;
      const keys = Object.keys(payload);
      if (Array.isArray(payload) || !keys.length) throw fail(400, 'PGRST102', 'Empty or invalid json');
      for (const k of keys) if (!table.columns.has(k)) throw fail(400, 'PGRST204', `Could not find the '${k}' column of '${name}' in the schema cache`);
      const sets = keys.map((k) => `${column(k)} = $${params.push(payload[k])}`);
      const rows = (await pool.query(`UPDATE "${name}" SET ${sets.join(', ')}${where} RETURNING *`, params)).rows;
      return representation ? { status: 200, headers: { 'content-range': `0-${rows.length - 1}/*` }, body: rows } : { status: 204, headers: {} };
    }
    case 'DELETE': {
      const rows = (await pool.query(`DELETE FROM "${name}"${where} RETURNING *`, params)).rows;
      return representation ? { status: 200, headers: {}, body: rows } : { status: 204, headers: {} };
    }
    default:
      throw fail(405, 'PGRST117', `Unsupported HTTP method: ${req.method}`);
  }
}

const RESERVED = new Set(['limit', 'offset', 'order', 'select']);

/** Horizontal filters: `c=eq.v`, `c=is.null`, `c=not.is.null`. */
function filters(query: URLSearchParams, column: (c: string) => string, params: unknown[]): string {
  const terms: string[] = [];
  for (const [c, v] of query) {
    if (RESERVED.has(c)) continue;
    if (v.startsWith('eq.')) terms.push(`${column(c)} = $${params.push(v.slice(3))}`);
    else if (v === 'is.null') terms.push(`${column(c)} IS NULL`);
    else if (v === 'not.is.null') terms.push(`${column(c)} IS NOT NULL`);
    else throw fail(400, 'PGRST100', `"failed to parse filter (${v})" (line 1, column 1)`);
  }
  return terms.length ? ` WHERE ${terms.join(' AND ')}` : '';
}

function orderTerm(term: string, column: (c: string) => string): string {
  const [c = '', dir = 'asc'] = term.split('.');
  if (dir !== 'asc' && dir !== 'desc') throw fail(400, 'PGRST100', `"failed to parse order (${term})" (line 1, column 1)`);
  return `${column(c)} ${dir.toUpperCase()}`;
}

/** `limit`/`offset` query parameters, or a `Range: first-last` header. */
function range(query: URLSearchParams, header: string | undefined): [offset: number, limit: number | undefined] {
  const nat = (v: string | null, what: string) => {
    if (v === null) return undefined;
    if (!/^\d+$/.test(v)) throw fail(400, 'PGRST100', `"failed to parse ${what} (${v})" (line 1, column 1)`);
    return Number(v);
  };
  const m = header ? /^(\d+)-(\d*)$/.exec(header) : null;
  const offset = nat(query.get('offset'), 'offset') ?? (m ? Number(m[1]) : 0);
  const limit = nat(query.get('limit'), 'limit') ?? (m?.[2] ? Number(m[2]) - Number(m[1]) + 1 : undefined);
  return [offset, limit];
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  try {
    const value: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    if (typeof value === 'object' && value !== null) return value;
  } catch {
    // answered below
  }
  throw fail(400, 'PGRST102', 'Empty or invalid json');
}

/** A Postgres error as PostgREST forwards it: its SQLSTATE, message, detail and hint, and the HTTP status of its class. */
function pgFailure(err: unknown): Failure {
  const e = err as { code?: string; message?: string; detail?: string; hint?: string };
  const code = e.code ?? 'XX000';
  const status = code === '23505' || code === '23503' ? 409 : /^(08|53)/.test(code) ? 503 : /^(09|25|2D|38|39|3B|40|54|55|57|58|F0|HV|XX)/.test(code) ? 500 : 400;
  return { status, code, message: e.message ?? String(err), details: e.detail ?? null, hint: e.hint ?? null };
}

function isFailure(err: unknown): err is Failure {
  return typeof err === 'object' && err !== null && typeof (err as Failure).status === 'number' && typeof (err as Failure).code === 'string';
}

function reply(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  res.writeHead(status, body === undefined ? headers : { ...headers, 'content-type': 'application/json; charset=utf-8' });
  res.end(body === undefined ? undefined : JSON.stringify(body));
}
