import { AuthRequiredError, ConflictError, InvalidInputError, MasterRejectedError, MasterUnavailableError, UnexpectedResponseError } from '../errors.js';
import { idProblem } from '../ids.js';
import type { BatchWrite, Id, PageRequest, Row, Settled, TableLike, WriteOptions } from '../types.js';
import { vantageAdapter, type BatchSpelling, type Delivery, type RestAdapter, type RestAnswer, type RestCall, type WriteContext } from './adapters.js';

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
  /** How the backend spells tables, pages, writes and errors; default the vantage protocol (docs/protocol.md). */
  adapter?: RestAdapter;
}

/** Writes per batch until the master says how many it takes. */
const DEFAULT_BATCH_MAX = 100;

/** Page size used to read a whole table when `list()` is called without a page. */
const WHOLE_TABLE_IPP = 1000;

/**
 * A master over HTTP, speaking the protocol of ARCHITECTURE.md by default, or
 * another backend's through an adapter (src/master/adapters.ts). Every write
 * carries its idempotency key; the adapter says whether the backend hears it.
 * Failures become typed errors: MasterUnavailableError (transient: no answer,
 * 408, 429, 5xx) or MasterRejectedError (permanent: any other 4xx).
 */
export class RestTable implements TableLike {
  readonly idField: string;
  private readonly fetch: typeof fetch;
  private readonly timeoutMs: number;
  private readonly url: string;
  private readonly headers: RestTableOptions['headers'];
  private readonly authStatuses: number[];
  readonly adapter: RestAdapter;
  /** The most writes one batch may carry: 0 once the master is known to take none. */
  private batchMax = DEFAULT_BATCH_MAX;

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
    this.adapter = opts.adapter ?? vantageAdapter;
  }

  /** What a retried write whose answer was lost turns into, for this backend. */
  get delivery(): Delivery {
    return this.adapter.delivery;
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
    const { rows, total } = this.adapter.readPage(await this.send(this.adapter.list(req, this.idField)));
    return { rows: rows.map((row) => [this.idOf(row), row]), total };
  }

  async get(id: Id): Promise<Row | undefined> {
    try {
      return this.adapter.readRow(await this.send(this.adapter.get(this.checked(id), this.idField)));
    } catch (err) {
      if (err instanceof MasterRejectedError && err.status === 404) return undefined;
      throw err;
    }
  }

  /**
   * Without idempotency keys, a retried insert whose first answer was lost
   * finds its own row (a 409, or a 5xx from a backend that fails on a
   * duplicate): it counts as applied when the stored row holds every field
   * that was sent, and fails as it did otherwise.
   */
  async insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    const sent = { ...row, [this.idField]: id };
    try {
      return await this.write(this.adapter.insert(sent, context(opts)));
    } catch (err) {
      const maybeStored = (err instanceof MasterRejectedError && err.status === 409) || (err instanceof MasterUnavailableError && (err.status ?? 0) >= 500);
      if (this.adapter.delivery.idempotencyKeys || !maybeStored) throw err;
      const stored = await this.get(id).catch(() => undefined);
      if (stored && holds(stored, sent)) return stored;
      throw err;
    }
  }

  async insertReturnId(row: Row, opts?: WriteOptions): Promise<Id> {
    return this.idOf(await this.write(this.adapter.insert(row, context(opts))));
  }

  async replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    return this.write(this.adapter.replace(this.checked(id), { ...row, [this.idField]: id }, this.idField, context(opts)));
  }

  async patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row> {
    return this.write(this.adapter.patch(this.checked(id), partial, this.idField, context(opts)));
  }

  // A 404 means the row is already gone, which is what the caller asked for.
  async delete(id: Id, opts?: WriteOptions): Promise<void> {
    try {
      await this.send(this.adapter.delete(this.checked(id), this.idField, context(opts)));
    } catch (err) {
      if (!(err instanceof MasterRejectedError && err.status === 404)) throw err;
    }
  }

  /** One request when the backend has one for it; otherwise every row, one by one (not atomic). */
  async deleteAll(opts?: WriteOptions): Promise<void> {
    if (this.adapter.deleteAll) {
      await this.send(this.adapter.deleteAll(this.idField, context(opts)));
      return;
    }
    for (const [id] of await this.list()) await this.delete(id, opts);
  }

  /** A write's answer: the row as the backend stored it. An answer without one means there was no such row. */
  private async write(call: RestCall): Promise<Row> {
    const answer = await this.send(call);
    const row = this.adapter.readRow(answer);
    if (row === undefined) throw new MasterRejectedError(404, 'not_found', `${call.method} ${this.url}${call.path}: ${answer.status} with no row: no such row`);
    return row;
  }

  private checked(id: Id): Id {
    const problem = idProblem(id);
    if (problem) throw new InvalidInputError(`Invalid id ${JSON.stringify(id)}: ${problem}`);
    return id;
  }

  private idOf(row: Row): Id {
    return String(row[this.idField]);
  }

  /** The HTTP every adapter shares: credentials, timeout, no redirects, and typed errors. */
  private async send(call: RestCall): Promise<RestAnswer> {
    const { method, path, body } = call;
    const headers: Record<string, string> = { ...(await this.headers?.()), accept: 'application/json', ...call.headers };
    if (body !== undefined) headers['content-type'] = 'application/json';
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
    const answer: RestAnswer = { status: res.status, headers: res.headers, json: parseJson(text), text };
    if (res.ok) {
      if (method === 'GET' && path.startsWith('?') && this.adapter.batch) this.learnBatches(res.headers);
      if (answer.json === undefined && !(res.status === 204 || (method === 'DELETE' && !text))) {
        throw new UnexpectedResponseError(res.status, `${method} ${url}: ${res.status} without a JSON body (${res.headers.get('content-type') ?? 'no content type'}): not the master's answer`);
      }
      return answer;
    }
    throw this.failure(call, answer, res.statusText);
  }

  /** The typed error of a failure answer, to a call of its own or to one write of a batch. */
  private failure(call: RestCall, answer: RestAnswer, statusText = ''): Error {
    const url = this.url + call.path;
    if (this.authStatuses.includes(answer.status)) return new AuthRequiredError(`${call.method} ${url}: ${answer.status}: sign in again`, answer.status);
    const failure = this.adapter.readFailure(answer);
    const status = failure.status ?? answer.status;
    const message = `${call.method} ${url}: ${status} ${failure.message || statusText}`;
    // A failed precondition: the row changed since the write was made; the answer holds the current row (docs/protocol.md, Versions).
    if (status === 412 && call.headers?.['if-match'] !== undefined) {
      const theirs = (answer.json as { row?: unknown } | undefined)?.row;
      return new ConflictError(isRow(theirs) ? theirs : null, message);
    }
    if (failure.transient ?? (status === 408 || status === 429 || status >= 500)) {
      return new MasterUnavailableError(message, status, retryAfterMs(answer.headers.get('retry-after')));
    }
    return new MasterRejectedError(status, failure.code, message);
  }

  // A list answer says whether the master takes batches, and how large (`Vantage-Batch`, docs/protocol.md).
  private learnBatches(headers: Headers): void {
    const max = Number(headers.get('vantage-batch'));
    this.batchMax = Number.isInteger(max) && max > 0 ? max : 0;
  }

  /**
   * Several writes in one request where the backend takes batches (its adapter
   * has `batch` and the master advertises them, or has not said otherwise);
   * undefined when it does not, learnt from a 404 or 405 to the batch or a
   * list answer without the advertisement, and for a batch it refuses whole
   * (too large): the caller then sends the writes one by one.
   */
  async writeBatch(writes: BatchWrite[]): Promise<Settled[] | undefined> {
    const spelling = this.adapter.batch;
    if (spelling === undefined || this.batchMax === 0) return undefined;
    const out: Settled[] = [];
    for (let start = 0; start < writes.length; start += this.batchMax) {
      const part = await this.sendBatch(spelling, writes.slice(start, start + this.batchMax));
      if (part === undefined) return start === 0 ? undefined : out;
      out.push(...part);
      if (this.batchMax === 0) break;
    }
    return out;
  }

  private async sendBatch(spelling: BatchSpelling, writes: BatchWrite[]): Promise<Settled[] | undefined> {
    const settled: Array<Settled | undefined> = [];
    const calls: Array<{ at: number; write: BatchWrite; call: RestCall; id?: Id }> = [];
    writes.forEach((write, at) => {
      try {
        const { call, id } = this.callOf(write);
        calls.push({ at, write, call, id });
        settled.push(undefined);
      } catch (error) {
        settled.push({ ok: false, error });
      }
    });
    if (calls.length > 0) {
      let answer: RestAnswer;
      try {
        answer = await this.send(spelling.call(calls.map(({ call, id }) => ({ call, id }))));
      } catch (err) {
        if (!(err instanceof MasterRejectedError)) throw err;
        // No batches here (an older master): never again. Any other refusal of the whole: this one goes one by one.
        if (err.status === 404 || err.status === 405) this.batchMax = 0;
        return undefined;
      }
      const answers = spelling.read(answer);
      if (answers.length !== calls.length) {
        throw new UnexpectedResponseError(answer.status, `POST ${this.url}: ${answers.length} answers to a batch of ${calls.length} writes`);
      }
      calls.forEach(({ at, write, call }, i) => (settled[at] = this.settleOne(write, call, answers[i]!)));
    }
    return settled as Settled[];
  }

  private callOf(write: BatchWrite): { call: RestCall; id?: Id } {
    const w = context(write.opts);
    switch (write.kind) {
      case 'insert':
        return { call: this.adapter.insert({ ...write.row, [this.idField]: write.id }, w) };
      case 'insertReturnId':
        return { call: this.adapter.insert(write.row, w) };
      case 'replace':
        return { call: this.adapter.replace(this.checked(write.id), { ...write.row, [this.idField]: write.id }, this.idField, w), id: write.id };
      case 'patch':
        return { call: this.adapter.patch(this.checked(write.id), write.row, this.idField, w), id: write.id };
      case 'delete':
        return { call: this.adapter.delete(this.checked(write.id), this.idField, w), id: write.id };
    }
  }

  // What the write's own method would have resolved with or thrown, from its answer in the batch.
  private settleOne(write: BatchWrite, call: RestCall, answer: RestAnswer): Settled {
    if (answer.status < 200 || answer.status >= 300) {
      const error = this.failure(call, answer);
      // As delete(): a row already gone is what the caller asked for.
      if (write.kind === 'delete' && error instanceof MasterRejectedError && error.status === 404) return { ok: true, value: undefined };
      return { ok: false, error };
    }
    if (write.kind === 'delete') return { ok: true, value: undefined };
    const row = this.adapter.readRow(answer);
    if (row === undefined) return { ok: false, error: new MasterRejectedError(404, 'not_found', `${call.method} ${this.url}${call.path}: ${answer.status} with no row: no such row`) };
    return { ok: true, value: write.kind === 'insertReturnId' ? this.idOf(row) : row };
  }
}

/** What a write carries to its adapter besides the row: its key, and the version it was made against as an ETag. */
function context(opts: WriteOptions | undefined): WriteContext {
  return { idempotencyKey: opts?.idempotencyKey, version: opts?.ifMatch === undefined ? undefined : `"${opts.ifMatch}"` };
}

/** Whether `stored` holds every field of `sent` with the same value (the backend may add fields of its own). */
function holds(stored: Row, sent: Row): boolean {
  return Object.entries(sent).every(([k, v]) => JSON.stringify(stored[k]) === JSON.stringify(v));
}

export { KEY_IN_PROGRESS } from './adapters.js';

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
