import { AuthRequiredError, ConflictError, InvalidInputError, MasterRejectedError, MasterUnavailableError, UnexpectedResponseError } from '../errors.js';
import { idPathSegment, idProblem } from '../ids.js';
import type { Id, PageRequest, Row, TableLike, WriteOptions } from '../types.js';

export interface RestTableOptions {
  /** The fetch to use; default the global one. Injected so tests and workers can wrap it. */
  fetch?: typeof fetch;
  /** The field of a row that holds its id; default "id". */
  idField?: string;
  /** A request with no answer after this long fails as transient; default 10 s. */
  timeoutMs?: number;
  /**
   * Headers for every request, asked for each time (e.g. `Authorization:
   * Bearer …` from the current session); may throw AuthRequiredError when there
   * are no credentials yet. Cookie sessions need none: same-origin fetches carry cookies.
   */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  /** Statuses that mean "sign in again" (AuthRequiredError); default 401 and 419. */
  authStatuses?: number[];
}

/** Page size used to read a whole table when `list()` is called without a page. */
const WHOLE_TABLE_IPP = 1000;

/**
 * A master over HTTP, speaking the protocol of ARCHITECTURE.md. Every write
 * sends its idempotency key as `Idempotency-Key`. Failures become typed errors:
 * MasterUnavailableError (transient: no answer, 408, 429, 5xx) or
 * MasterRejectedError (permanent: any other 4xx).
 */
export class RestTable implements TableLike {
  readonly idField: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly url: string;
  private readonly headers: RestTableOptions['headers'];
  private readonly authStatuses: number[];

  /**
   * @param apiBase where the tables live, e.g. "/api" or "https://example.com/api"
   * @param name the table's name: its path under `apiBase`
   */
  constructor(
    apiBase: string,
    readonly name: string,
    opts: RestTableOptions = {},
  ) {
    this.url = `${apiBase.replace(/\/$/, '')}/${encodeURIComponent(name)}`;
    this.idField = opts.idField ?? 'id';
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.headers = opts.headers;
    this.authStatuses = opts.authStatuses ?? [401, 419];
  }

  async list(req?: PageRequest): Promise<Array<[Id, Row]>> {
    if (req) return (await this.page(req)).rows;
    const all: Array<[Id, Row]> = [];
    for (let page = 1; ; page++) {
      const { rows, total } = await this.page({ page, ipp: WHOLE_TABLE_IPP });
      all.push(...rows);
      if (rows.length < WHOLE_TABLE_IPP || all.length >= total) return all;
    }
  }

  /** One page with the master's `total` row count. */
  async page(req: PageRequest): Promise<{ rows: Array<[Id, Row]>; total: number }> {
    const body = (await this.request('GET', `?page=${req.page}&ipp=${req.ipp}`)) as { rows: Row[]; total: number };
    return { rows: body.rows.map((row) => [this.idOf(row), row]), total: body.total };
  }

  async get(id: Id): Promise<Row | undefined> {
    try {
      return (await this.request('GET', this.path(id))) as Row;
    } catch (err) {
      if (err instanceof MasterRejectedError && err.status === 404) return undefined;
      throw err;
    }
  }

  async insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    return (await this.request('POST', '', { ...row, [this.idField]: id }, opts)) as Row;
  }

  async insertReturnId(row: Row, opts?: WriteOptions): Promise<Id> {
    return this.idOf((await this.request('POST', '', row, opts)) as Row);
  }

  async replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    return (await this.request('PUT', this.path(id), { ...row, [this.idField]: id }, opts)) as Row;
  }

  async patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row> {
    return (await this.request('PATCH', this.path(id), partial, opts)) as Row;
  }

  // A 404 means the row is already gone, which is what the caller asked for.
  async delete(id: Id, opts?: WriteOptions): Promise<void> {
    try {
      await this.request('DELETE', this.path(id), undefined, opts);
    } catch (err) {
      if (!(err instanceof MasterRejectedError && err.status === 404)) throw err;
    }
  }

  async deleteAll(opts?: WriteOptions): Promise<void> {
    await this.request('DELETE', '', undefined, opts);
  }

  private path(id: Id): string {
    const problem = idProblem(id);
    if (problem) throw new InvalidInputError(`Invalid id ${JSON.stringify(id)}: ${problem}`);
    return `/${idPathSegment(id)}`;
  }

  private idOf(row: Row): Id {
    return String(row[this.idField]);
  }

  private async request(method: string, path: string, body?: Row, opts?: WriteOptions): Promise<unknown> {
    const headers: Record<string, string> = { ...(await this.headers?.()), accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (opts?.idempotencyKey) headers['idempotency-key'] = opts.idempotencyKey;
    if (opts?.ifMatch !== undefined) headers['if-match'] = `"${opts.ifMatch}"`;
    const url = this.url + path;
    let res: Response;
    try {
      res = await this.fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        // A redirect is an auth proxy's sign-in page, never the master's answer: following it would answer 200 with HTML.
        redirect: 'manual',
      });
    } catch (err) {
      throw new MasterUnavailableError(`${method} ${url} got no answer: ${(err as Error).message}`, undefined, undefined, err);
    }
    if (res.type === 'opaqueredirect' || (res.status >= 300 && res.status < 400)) {
      throw new AuthRequiredError(`${method} ${url} was redirected${res.headers.get('location') ? ` to ${res.headers.get('location')}` : ''} (a sign-in page): sign in again`, res.status);
    }
    if (this.authStatuses.includes(res.status)) throw new AuthRequiredError(`${method} ${url}: ${res.status}: sign in again`, res.status);
    const text = await res.text().catch(() => '');
    const json = parseJson(text);
    if (res.ok) {
      if (json === undefined && !(res.status === 204 || (method === 'DELETE' && !text))) {
        throw new UnexpectedResponseError(res.status, `${method} ${url}: ${res.status} without a JSON body (${res.headers.get('content-type') ?? 'no content type'}): not the master's answer`);
      }
      return json;
    }
    const error = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    const message = `${method} ${url}: ${res.status} ${error?.message ?? (text.slice(0, 200) || res.statusText)}`;
    const status = res.status;
    if (status === 412 && opts?.ifMatch !== undefined) {
      const theirs = (json as { row?: unknown } | undefined)?.row;
      throw new ConflictError(isRow(theirs) ? theirs : null, message);
    }
    // 409 for a key still being processed (the IETF Idempotency-Key draft): the first request may yet finish.
    if (status === 408 || status === 429 || status >= 500 || (status === 409 && error?.code === KEY_IN_PROGRESS)) {
      throw new MasterUnavailableError(message, status, retryAfterMs(res.headers.get('retry-after')));
    }
    throw new MasterRejectedError(status, error?.code ?? `http_${status}`, message);
  }
}

/** The error code of a 409 that means "this Idempotency-Key is still being processed" (docs/protocol.md). */
export const KEY_IN_PROGRESS = 'idempotency_key_in_progress';

const isRow = (value: unknown): value is Row => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseJson(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** `Retry-After` is either seconds or an HTTP date. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}
