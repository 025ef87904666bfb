/**
 * Runs the checks of checks.ts against a backend, one after the other, and
 * reports each as it finishes.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { CHECKS, GROUPS, type Check, type CheckContext } from './checks.js';
import { describeAnswer } from './expect.js';
import { Http, NoAnswerError } from './http.js';
import { SseStream } from './sse.js';

export { CHECKS, GROUPS, type Check } from './checks.js';

export interface ConformanceOptions {
  /** The backend's origin, optionally with a path prefix: `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** The table to test with (`[A-Za-z0-9_-]{1,64}`); the kit only touches rows it made. */
  table: string;
  /** Sent with every request, e.g. `{ Authorization: 'Bearer X' }`. */
  headers?: Record<string, string>;
  /** Groups (`feed`) or check ids (`feed.heartbeat`) not to run. */
  skip?: string[];
  /** How long one request, or one wait on the feed, may take (default 10 s). */
  timeoutMs?: number;
  /** Called with each result as soon as it is known. */
  onResult?: (result: CheckResult) => void;
}

export interface CheckResult {
  id: string;
  outcome: 'pass' | 'fail' | 'skip';
  /** For a pass or skip, what the check holds the backend to; for a failure, what was expected and what came back. */
  detail: string;
}

/** The run could not start: bad options, or a backend that cannot be reached or refuses the kit. */
export class ConformanceSetupError extends Error {
  override readonly name = 'ConformanceSetupError';
  constructor(
    readonly code: 'bad-arguments' | 'unreachable' | 'refused',
    message: string,
  ) {
    super(message);
  }
}

const TABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Checks a backend against docs/protocol.md. Resolves with one result per
 * check (failures included); rejects only with a ConformanceSetupError.
 */
export async function runConformance(opts: ConformanceOptions): Promise<CheckResult[]> {
  const base = parseBaseUrl(opts.baseUrl);
  if (!TABLE_NAME.test(opts.table)) throw new ConformanceSetupError('bad-arguments', `table name ${JSON.stringify(opts.table)} must match ${TABLE_NAME.source}`);
  const skip = new Set(opts.skip ?? []);
  const known = new Set<string>([...GROUPS, ...CHECKS.map((c) => c.id)]);
  const unknown = [...skip].filter((s) => !known.has(s));
  if (unknown.length > 0) throw new ConformanceSetupError('bad-arguments', `nothing to skip named ${unknown.join(', ')}; groups are ${GROUPS.join(', ')}`);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  if (!(timeoutMs > 0)) throw new ConformanceSetupError('bad-arguments', 'the timeout must be a positive number of milliseconds');

  const http = new Http(base, { headers: opts.headers ?? {}, timeoutMs });
  await probe(http, opts.table);

  const prefix = `vlc-${randomBytes(4).toString('hex')}-`;
  const results: CheckResult[] = [];
  for (const c of CHECKS) {
    const result: CheckResult = skip.has(c.id) || skip.has(c.group) ? { id: c.id, outcome: 'skip', detail: c.title } : await runCheck(c, http, opts.table, prefix);
    results.push(result);
    opts.onResult?.(result);
  }
  return results;
}

/** One result as a line: `PASS  rows.get  GET /api/:table/:id answers the row`. */
export function formatResult(result: CheckResult): string {
  return `${result.outcome.toUpperCase().padEnd(4)}  ${result.id}  ${result.detail.replace(/\s+/g, ' ')}`;
}

function parseBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConformanceSetupError('bad-arguments', `${JSON.stringify(raw)} is not a URL; give the backend's origin, e.g. http://127.0.0.1:8787`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConformanceSetupError('bad-arguments', `${raw} is not an http or https URL`);
  if (url.search !== '' || url.hash !== '') throw new ConformanceSetupError('bad-arguments', `${raw} has a query or fragment; give the origin (and path prefix) only`);
  return url;
}

// One list request before the checks, so an unreachable or locked backend is
// one clear error instead of every check failing the same way.
async function probe(http: Http, table: string): Promise<void> {
  const path = `/api/${table}?page=1&ipp=1`;
  try {
    const answer = await http.request('GET', path);
    if (answer.status === 401 || answer.status === 403) {
      throw new ConformanceSetupError('refused', `${http.base.origin} refused GET ${http.fullPath(path)} with ${describeAnswer(answer)}; pass credentials with --header 'Authorization: ...'`);
    }
  } catch (err) {
    if (err instanceof NoAnswerError) throw new ConformanceSetupError('unreachable', `cannot reach ${http.base.href}: ${err.message}`);
    throw err;
  }
}

async function runCheck(c: Check, http: Http, table: string, prefix: string): Promise<CheckResult> {
  const created = new Set<string>();
  const feeds: SseStream[] = [];
  let counter = 0;
  const rowsPath = `/api/${table}`;
  const t: CheckContext = {
    http,
    table,
    newId: (label) => {
      const id = `${prefix}${label}-${++counter}`;
      created.add(id);
      return id;
    },
    adopt: (id) => void created.add(id),
    newKey: () => `vlc-${randomUUID()}`,
    rowsPath: (query) => (query === undefined ? rowsPath : `${rowsPath}?${query}`),
    rowPath: (id) => `${rowsPath}/${encodeURIComponent(id)}`,
    openFeed: async (query, headers) => {
      const path = `${rowsPath}/events${query === undefined ? '' : `?${query}`}`;
      const { res, req } = await http.stream(path, headers);
      const feed = new SseStream(res, req, http.timeoutMs);
      feeds.push(feed);
      return feed;
    },
  };
  try {
    await c.run(t);
    return { id: c.id, outcome: 'pass', detail: c.title };
  } catch (err) {
    return { id: c.id, outcome: 'fail', detail: err instanceof Error ? err.message : String(err) };
  } finally {
    for (const feed of feeds) feed.close();
    // Best effort: a row that cannot be deleted now is no reason to fail the check.
    await Promise.allSettled([...created].map((id) => http.request('DELETE', t.rowPath(id))));
  }
}
