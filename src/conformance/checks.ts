/**
 * The checks, one behaviour of docs/protocol.md each. Every check starts from
 * nothing but the table, makes its own rows (ids with the run's random
 * prefix) and leaves nothing behind: the runner deletes what it registered.
 */
import { idProblem } from '../ids.js';
import { describeAnswer, expectError, expectRow, fail, isObject } from './expect.js';
import type { Answer, Http } from './http.js';
import { describeEvents, type SseEvent, type SseStream } from './sse.js';

/** What a check may use; everything it opens or registers is cleaned up after it. */
export interface CheckContext {
  http: Http;
  table: string;
  /** A fresh id, `<run prefix><label>-<n>`, deleted after the check. */
  newId(label: string): string;
  /** Deletes `id` after the check too (ids the backend assigned). */
  adopt(id: string): void;
  /** A fresh Idempotency-Key. */
  newKey(): string;
  /** `/api/<table>` with an optional `?query`. */
  rowsPath(query?: string): string;
  /** `/api/<table>/<id percent-encoded>`. */
  rowPath(id: string): string;
  /** Opens the SSE feed of the table; closed after the check. */
  openFeed(query?: string, headers?: Record<string, string>): Promise<SseStream>;
}

export const GROUPS = ['list', 'rows', 'ids', 'idempotency', 'versions', 'batch', 'errors', 'feed'] as const;
export type Group = (typeof GROUPS)[number];

export interface Check {
  /** `<group>.<name>`, what `--skip` and the report use. */
  id: string;
  group: Group;
  /** What a passing backend does, in one line. */
  title: string;
  run(t: CheckContext): Promise<void>;
}

const check = (id: string, title: string, run: (t: CheckContext) => Promise<void>): Check => ({
  id,
  group: id.slice(0, id.indexOf('.')) as Group,
  title,
  run,
});

async function insert(t: CheckContext, row: Record<string, unknown> & { id: string }): Promise<void> {
  const answer = await t.http.request('POST', t.rowsPath(), row);
  expectRow(`POST ${t.rowsPath()} ${JSON.stringify(row)}`, answer, 201, row);
}

async function expectMissing(t: CheckContext, id: string, why: string): Promise<void> {
  const answer = await t.http.request('GET', t.rowPath(id));
  if (answer.status !== 404) fail(`GET ${t.rowPath(id)} ${why}`, '404', describeAnswer(answer));
}

function listBody(step: string, answer: Answer): { rows: Record<string, unknown>[]; page: unknown; ipp: unknown; total: number } {
  const body = answer.json;
  const expected = '200 {"rows":[{"id":...}],"page":N,"ipp":M,"total":T}';
  if (answer.status !== 200 || !isObject(body) || !Array.isArray(body.rows) || typeof body.total !== 'number' || !Number.isInteger(body.total)) {
    fail(step, expected, describeAnswer(answer));
  }
  const rows = body.rows as unknown[];
  if (!rows.every((r) => isObject(r) && typeof r.id === 'string')) fail(step, `${expected}, every row with a string "id"`, describeAnswer(answer));
  return { rows: rows as Record<string, unknown>[], page: body.page, ipp: body.ipp, total: body.total as number };
}

const listChecks: Check[] = [
  check('list.shape', 'GET /api/:table answers {rows,page,ipp,total} with the defaults page 1 and ipp 50', async (t) => {
    const step = `GET ${t.rowsPath()}`;
    const list = listBody(step, await t.http.request('GET', t.rowsPath()));
    if (list.page !== 1 || list.ipp !== 50) fail(step, '"page":1,"ipp":50 (the defaults)', `"page":${JSON.stringify(list.page)},"ipp":${JSON.stringify(list.ipp)}`);
    if (list.rows.length > 50) fail(step, 'at most 50 rows', `${list.rows.length}`);
  }),

  check('list.paging', 'pages are 1-based, keep insertion order, count the whole table in total, and are empty past the end', async (t) => {
    const ids = [t.newId('page'), t.newId('page'), t.newId('page')];
    for (const id of ids) await insert(t, { id, name: 'paging' });
    const first = listBody(`GET ${t.rowsPath('page=1&ipp=1')}`, await t.http.request('GET', t.rowsPath('page=1&ipp=1')));
    const total = first.total;
    if (total < 3) fail(`GET ${t.rowsPath('page=1&ipp=1')} after 3 inserts`, 'a total of at least 3', String(total));
    for (const [i, id] of ids.entries()) {
      const query = `page=${total - 2 + i}&ipp=1`;
      const step = `GET ${t.rowsPath(query)} (the last 3 pages hold the 3 rows just inserted, in order)`;
      const page = listBody(step, await t.http.request('GET', t.rowsPath(query)));
      if (page.page !== total - 2 + i || page.ipp !== 1) fail(step, `"page":${total - 2 + i},"ipp":1`, `"page":${JSON.stringify(page.page)},"ipp":${JSON.stringify(page.ipp)}`);
      if (page.rows.length !== 1 || page.rows[0]?.id !== id) fail(step, `rows [{"id":${JSON.stringify(id)},...}]`, JSON.stringify(page.rows));
    }
    const past = `page=${total + 1}&ipp=1`;
    const after = listBody(`GET ${t.rowsPath(past)}`, await t.http.request('GET', t.rowsPath(past)));
    if (after.rows.length !== 0 || after.total !== total) fail(`GET ${t.rowsPath(past)}`, `"rows":[] and "total":${total}`, `${after.rows.length} rows, total ${after.total}`);
  }),

  check('list.invalid-query', 'page 0, ipp 1001 and a non-numeric page are 400 invalid_query', async (t) => {
    for (const query of ['page=0', 'ipp=1001', 'page=x']) {
      expectError(`GET ${t.rowsPath(query)}`, await t.http.request('GET', t.rowsPath(query)), 400, 'invalid_query');
    }
  }),
];

const rowChecks: Check[] = [
  check('rows.get', 'GET /api/:table/:id answers the row', async (t) => {
    const id = t.newId('get');
    await insert(t, { id, name: 'get', n: 1 });
    expectRow(`GET ${t.rowPath(id)}`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'get', n: 1 });
  }),

  check('rows.get-missing', 'GET of a missing row is 404 with an error body', async (t) => {
    const id = t.newId('missing');
    expectError(`GET ${t.rowPath(id)}`, await t.http.request('GET', t.rowPath(id)), 404);
  }),

  check('rows.post-insert', 'POST with an id inserts it: 201 with the row as stored', async (t) => {
    const id = t.newId('insert');
    const row = { id, name: 'inserted', tags: ['a', 'b'], nested: { n: 1 } };
    expectRow(`POST ${t.rowsPath()}`, await t.http.request('POST', t.rowsPath(), row), 201, row);
    expectRow(`GET ${t.rowPath(id)} after the POST`, await t.http.request('GET', t.rowPath(id)), 200, row);
  }),

  check('rows.post-conflict', 'POST with a taken id is 409 conflict and leaves the row as it was', async (t) => {
    const id = t.newId('conflict');
    await insert(t, { id, name: 'first' });
    expectError(`POST ${t.rowsPath()} with the taken id ${JSON.stringify(id)}`, await t.http.request('POST', t.rowsPath(), { id, name: 'second' }), 409, 'conflict');
    expectRow(`GET ${t.rowPath(id)} after the refused POST`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'first' });
  }),

  check('rows.post-assign', 'POST without an id is 201 with an id the server assigned, one the id rule accepts', async (t) => {
    const step = `POST ${t.rowsPath()} {"name":"assigned"}`;
    const answer = await t.http.request('POST', t.rowsPath(), { name: 'assigned' });
    const body = answer.json;
    if (isObject(body) && typeof body.id === 'string') t.adopt(body.id);
    if (answer.status !== 201 || !isObject(body) || typeof body.id !== 'string' || body.name !== 'assigned') {
      fail(step, '201 {"id":"<assigned>","name":"assigned"}', describeAnswer(answer));
    }
    const id = body.id as string;
    const problem = idProblem(id);
    if (problem !== undefined) fail(step, 'an assigned id that passes the id rule', `${JSON.stringify(id)} (${problem})`);
    expectRow(`GET ${t.rowPath(id)}`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'assigned' });
  }),

  check('rows.put-replace', 'PUT replaces the whole row: fields not sent are gone', async (t) => {
    const id = t.newId('replace');
    await insert(t, { id, a: 1, b: 2 });
    const step = `PUT ${t.rowPath(id)} {"a":3}`;
    const put = expectRow(step, await t.http.request('PUT', t.rowPath(id), { a: 3 }), 200, { id, a: 3 });
    if ('b' in put) fail(step, 'the row without "b"', JSON.stringify(put));
    const got = expectRow(`GET ${t.rowPath(id)} after the PUT`, await t.http.request('GET', t.rowPath(id)), 200, { id, a: 3 });
    if ('b' in got) fail(`GET ${t.rowPath(id)} after the PUT`, 'the row without "b"', JSON.stringify(got));
  }),

  check('rows.put-create', 'PUT of a missing id creates the row: 200 with the row', async (t) => {
    const id = t.newId('create');
    expectRow(`PUT ${t.rowPath(id)}`, await t.http.request('PUT', t.rowPath(id), { name: 'created' }), 200, { id, name: 'created' });
    expectRow(`GET ${t.rowPath(id)} after the PUT`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'created' });
  }),

  check('rows.id-mismatch', 'a body id that differs from the path id is 400 id_mismatch on PUT and PATCH', async (t) => {
    const id = t.newId('mismatch');
    const other = t.newId('other');
    expectError(`PUT ${t.rowPath(id)} {"id":${JSON.stringify(other)}}`, await t.http.request('PUT', t.rowPath(id), { id: other }), 400, 'id_mismatch');
    await expectMissing(t, id, 'after the refused PUT');
    await expectMissing(t, other, 'after the refused PUT');
    await insert(t, { id, name: 'kept' });
    expectError(`PATCH ${t.rowPath(id)} {"id":${JSON.stringify(other)}}`, await t.http.request('PATCH', t.rowPath(id), { id: other }), 400, 'id_mismatch');
  }),

  check('rows.patch', 'PATCH merges shallowly into the row: 200 with the row as stored', async (t) => {
    const id = t.newId('patch');
    await insert(t, { id, a: 1, b: 2, nested: { x: 1, y: 2 } });
    const merged = { id, a: 1, b: 3, nested: { x: 9 }, c: 4 };
    expectRow(`PATCH ${t.rowPath(id)}`, await t.http.request('PATCH', t.rowPath(id), { b: 3, c: 4, nested: { x: 9 } }), 200, merged);
    expectRow(`GET ${t.rowPath(id)} after the PATCH`, await t.http.request('GET', t.rowPath(id)), 200, merged);
  }),

  check('rows.patch-missing', 'PATCH of a missing row is 404 and creates nothing', async (t) => {
    const id = t.newId('patch-missing');
    expectError(`PATCH ${t.rowPath(id)}`, await t.http.request('PATCH', t.rowPath(id), { a: 1 }), 404);
    await expectMissing(t, id, 'after the refused PATCH');
  }),

  check('rows.delete', 'DELETE is 204 with no body, and the row is gone', async (t) => {
    const id = t.newId('delete');
    await insert(t, { id, name: 'doomed' });
    const answer = await t.http.request('DELETE', t.rowPath(id));
    if (answer.status !== 204 || answer.text !== '') fail(`DELETE ${t.rowPath(id)}`, '204 with no body', describeAnswer(answer));
    await expectMissing(t, id, 'after the DELETE');
  }),

  check('rows.delete-missing', 'DELETE of a missing row is 404 with an error body', async (t) => {
    const id = t.newId('delete-missing');
    expectError(`DELETE ${t.rowPath(id)}`, await t.http.request('DELETE', t.rowPath(id)), 404);
  }),

  check('rows.methods', 'OPTIONS is 204 with Allow; a method the route does not take is 405 with Allow', async (t) => {
    const options = await t.http.request('OPTIONS', t.rowsPath());
    if (options.status !== 204 || typeof options.headers.allow !== 'string') fail(`OPTIONS ${t.rowsPath()}`, '204 with an Allow header', describeAnswer(options));
    const step = `PUT ${t.rowsPath()} (the collection takes no PUT)`;
    const put = await t.http.request('PUT', t.rowsPath(), { name: 'nothing' });
    expectError(step, put, 405);
    if (typeof put.headers.allow !== 'string') fail(step, '405 with an Allow header', describeAnswer(put));
  }),
];

/** Paths that name no valid id: each must be 400 invalid_id, never the collection. */
const REFUSED_SEGMENTS: Array<[segment: string, why: string]> = [
  ['.', '"."'],
  ['%2e', '"." as %2e'],
  ['%2E%2E', '".." as %2E%2E'],
  ['', 'the empty id (a trailing slash)'],
  ['a%2Fb', 'an id with "/"'],
  ['a%01b', 'an id with a control character'],
  ['x'.repeat(257), 'an id of 257 characters'],
];

const idChecks: Check[] = [
  check('ids.refused', 'ids the rule refuses (".", "%2e", "..", empty, "/", control characters, over 256) are 400 invalid_id, in the path and in a POST body', async (t) => {
    for (const [segment, why] of REFUSED_SEGMENTS) {
      const path = `${t.rowsPath()}/${segment}`;
      expectError(`PUT ${path} (${why})`, await t.http.request('PUT', path, { name: 'refused' }), 400, 'invalid_id');
    }
    for (const id of ['.', '..', '', 'a/b']) {
      expectError(`POST ${t.rowsPath()} {"id":${JSON.stringify(id)}}`, await t.http.request('POST', t.rowsPath(), { id, name: 'refused' }), 400, 'invalid_id');
    }
  }),

  check('ids.malformed', 'a path segment that is not percent-encoded UTF-8 is 400 bad_request', async (t) => {
    for (const segment of ['%ZZ', '%ED%A0%80']) {
      const path = `${t.rowsPath()}/${segment}`;
      expectError(`GET ${path}`, await t.http.request('GET', path), 400, 'bad_request');
    }
  }),

  check('ids.accepted', 'ids with spaces, %, ?, #, quotes, any script and emoji, and of exactly 256 characters, work percent-encoded', async (t) => {
    const unicode = t.newId(`ünï cødé ✓ 🚀 100% ?#"'`);
    expectRow(`PUT ${t.rowPath(unicode)}`, await t.http.request('PUT', t.rowPath(unicode), { name: 'unicode' }), 200, { id: unicode, name: 'unicode' });
    expectRow(`GET ${t.rowPath(unicode)}`, await t.http.request('GET', t.rowPath(unicode)), 200, { id: unicode, name: 'unicode' });
    const posted = t.newId('posted ✓ ?');
    await insert(t, { id: posted, name: 'posted' });
    expectRow(`GET ${t.rowPath(posted)}`, await t.http.request('GET', t.rowPath(posted)), 200, { id: posted });
    const base = t.newId('long');
    const long = base + 'x'.repeat(256 - base.length);
    t.adopt(long);
    expectRow(`PUT ${t.rowPath(long)} (256 characters)`, await t.http.request('PUT', t.rowPath(long), { name: 'long' }), 200, { id: long });
    const gone = await t.http.request('DELETE', t.rowPath(unicode));
    if (gone.status !== 204) fail(`DELETE ${t.rowPath(unicode)}`, '204', describeAnswer(gone));
  }),
];

const idempotencyChecks: Check[] = [
  check('idempotency.replay', 'the same Idempotency-Key with the same request replays the first answer (Idempotent-Replayed: true) and applies once', async (t) => {
    const key = { 'Idempotency-Key': t.newKey() };
    const step = `POST ${t.rowsPath()} {"name":"once"} with an Idempotency-Key`;
    const first = await t.http.request('POST', t.rowsPath(), { name: 'once' }, key);
    const firstBody = first.json;
    if (first.status !== 201 || !isObject(firstBody) || typeof firstBody.id !== 'string') fail(step, '201 with an assigned id', describeAnswer(first));
    const id = firstBody.id as string;
    t.adopt(id);
    const second = await t.http.request('POST', t.rowsPath(), { name: 'once' }, key);
    const secondBody = second.json;
    if (isObject(secondBody) && typeof secondBody.id === 'string') t.adopt(secondBody.id);
    const again = `${step}, sent again`;
    if (second.status !== 201 || !isObject(secondBody) || secondBody.id !== id) {
      fail(again, `201 {"id":${JSON.stringify(id)},...} (the first answer: applied once)`, describeAnswer(second));
    }
    if (second.headers['idempotent-replayed'] !== 'true') fail(again, 'the header Idempotent-Replayed: true', describeAnswer(second));
    if (JSON.stringify(secondBody) !== JSON.stringify(firstBody)) fail(again, `the first answer ${first.text}`, describeAnswer(second));
  }),

  check('idempotency.reuse', 'the same Idempotency-Key with another request is 422 idempotency_key_reused and applies nothing', async (t) => {
    const key = { 'Idempotency-Key': t.newKey() };
    const a = t.newId('key-a');
    const b = t.newId('key-b');
    expectRow(`PUT ${t.rowPath(a)} with an Idempotency-Key`, await t.http.request('PUT', t.rowPath(a), { name: 'a' }, key), 200, { id: a, name: 'a' });
    expectError(
      `PUT ${t.rowPath(b)} with the same Idempotency-Key`,
      await t.http.request('PUT', t.rowPath(b), { name: 'b' }, key),
      422,
      'idempotency_key_reused',
    );
    await expectMissing(t, b, 'after the refused reuse');
    expectError(
      `PUT ${t.rowPath(a)} with the same Idempotency-Key and another body`,
      await t.http.request('PUT', t.rowPath(a), { name: 'changed' }, key),
      422,
      'idempotency_key_reused',
    );
    expectRow(`GET ${t.rowPath(a)} after the refused reuse`, await t.http.request('GET', t.rowPath(a)), 200, { id: a, name: 'a' });
  }),

  check('idempotency.refused-keeps-key-free', 'a refused write does not use up its Idempotency-Key: a corrected retry with it applies', async (t) => {
    const key = { 'Idempotency-Key': t.newKey() };
    const id = t.newId('corrected');
    expectError(`PATCH ${t.rowPath(id)} (missing) with an Idempotency-Key`, await t.http.request('PATCH', t.rowPath(id), { name: 'x' }, key), 404);
    const step = `PUT ${t.rowPath(id)} with the same Idempotency-Key`;
    expectRow(step, await t.http.request('PUT', t.rowPath(id), { name: 'x' }, key), 200, { id, name: 'x' });
  }),

  check('idempotency.if-match-replay', 'a keyed write sent again replays its first answer even when its If-Match is stale by then', async (t) => {
    const id = t.newId('match-replay');
    const v1 = await putVersioned(t, id, { n: 1 });
    const headers = { 'Idempotency-Key': t.newKey(), 'If-Match': etag(v1) };
    const step = `PATCH ${t.rowPath(id)} {"n":2} with an Idempotency-Key and If-Match: ${etag(v1)}`;
    const first = await t.http.request('PATCH', t.rowPath(id), { n: 2 }, headers);
    expectRow(step, first, 200, { id, n: 2 });
    const again = await t.http.request('PATCH', t.rowPath(id), { n: 2 }, headers);
    if (again.status !== 200 || again.headers['idempotent-replayed'] !== 'true' || again.text !== first.text) {
      fail(`${step}, sent again`, `the first answer ${first.text} with Idempotent-Replayed: true`, describeAnswer(again));
    }
  }),

  check('idempotency.key-format', 'an Idempotency-Key that is not 1 to 255 visible ASCII characters is 400 invalid_idempotency_key', async (t) => {
    const id = t.newId('bad-key');
    for (const [key, why] of [
      ['has space', 'with a space'],
      ['k'.repeat(256), 'of 256 characters'],
    ] as const) {
      expectError(`PUT ${t.rowPath(id)} with an Idempotency-Key ${why}`, await t.http.request('PUT', t.rowPath(id), { name: 'x' }, { 'Idempotency-Key': key }), 400, 'invalid_idempotency_key');
    }
    await expectMissing(t, id, 'after the refused writes');
  }),
];

const errorChecks: Check[] = [
  check('errors.bodies', 'bodies that are not JSON, not an object, or nested deeper than 32 are 400 with {"error":{"code","message"}}', async (t) => {
    expectError(`POST ${t.rowsPath()} with the body "{"`, await t.http.request('POST', t.rowsPath(), '{'), 400);
    expectError(`POST ${t.rowsPath()} with the body [1]`, await t.http.request('POST', t.rowsPath(), '[1]'), 400);
    const deep = `{"id":${JSON.stringify(t.newId('deep'))},"v":${'['.repeat(40)}${']'.repeat(40)}}`;
    expectError(`POST ${t.rowsPath()} nested 41 deep`, await t.http.request('POST', t.rowsPath(), deep), 400, 'too_deep');
  }),

  check('errors.unknown-route', 'a path below a row (/api/:table/:id/x) is 404 with an error body', async (t) => {
    const path = `${t.rowPath(t.newId('route'))}/x`;
    expectError(`GET ${path}`, await t.http.request('GET', path), 404);
  }),
];

// ----- the change feed ------------------------------------------------------

interface FeedChange {
  eventId: string;
  kind: string;
  id: string | undefined;
}

const DECIMAL = /^\d+$/;
const isMessage = (e: SseEvent): boolean => e.event !== 'heartbeat';

function parseData(step: string, e: SseEvent): Record<string, unknown> {
  try {
    const data = JSON.parse(e.data) as unknown;
    if (isObject(data)) return data;
  } catch {
    // reported below
  }
  return fail(step, `one line of JSON object in data: of the ${e.event} event`, e.data);
}

/** A reset's head id, after checking the event against the protocol. */
function resetHead(step: string, e: SseEvent | undefined, events: SseEvent[]): string {
  if (e === undefined || e.event !== 'reset') fail(step, 'a reset event first', describeEvents(events));
  const data = parseData(step, e);
  if (typeof data.eventId !== 'string' || !DECIMAL.test(data.eventId)) fail(step, 'a reset whose data.eventId is a decimal string', e.data);
  if (e.id !== data.eventId) fail(step, `the reset's id: line equal to its data.eventId ${data.eventId}`, e.id === undefined ? 'no id: line' : `id: ${e.id}`);
  return data.eventId;
}

/** A change event, after checking it carries its id in `id:` and data. */
function asChange(step: string, e: SseEvent): FeedChange {
  const data = parseData(step, e);
  if (typeof data.eventId !== 'string' || !DECIMAL.test(data.eventId) || typeof data.kind !== 'string') {
    fail(step, 'a change with data {"eventId":"<decimal>","kind":...}', e.data);
  }
  if (e.id !== data.eventId) fail(step, `the change's id: line equal to its data.eventId ${data.eventId}`, e.id === undefined ? 'no id: line' : `id: ${e.id}`);
  return { eventId: data.eventId, kind: data.kind, id: typeof data.id === 'string' ? data.id : undefined };
}

async function openFeed(t: CheckContext, step: string, query?: string, headers?: Record<string, string>): Promise<SseStream> {
  const feed = await t.openFeed(query, headers);
  const type = feed.headers['content-type'] ?? '';
  if (feed.status !== 200 || !/^text\/event-stream\b/i.test(type)) fail(step, '200 text/event-stream', `${feed.status} ${type || '(no Content-Type)'}`);
  return feed;
}

/** Connects without a resume point and returns the head id of the reset it is told. */
async function headId(t: CheckContext): Promise<string> {
  const step = `GET ${t.rowsPath()}/events`;
  const feed = await openFeed(t, step);
  const events = await feed.until((es) => es.some(isMessage), `${step}: waiting for the first event`);
  feed.close();
  return resetHead(step, events.find(isMessage), events);
}

function rowIdOf(e: SseEvent): unknown {
  try {
    const data = JSON.parse(e.data) as unknown;
    return isObject(data) ? data.id : undefined;
  } catch {
    return undefined;
  }
}

/** Waits for `kinds` (in this order) among the changes of row `id`, checking ids grow and pass `after`. */
async function expectChanges(step: string, feed: SseStream, id: string, kinds: string[], after: string): Promise<void> {
  const changesOf = (events: SseEvent[]): SseEvent[] => events.filter((e) => e.event === 'change' && rowIdOf(e) === id);
  const what = `${step}: waiting for ${kinds.join(', ')} of ${JSON.stringify(id)}`;
  const events = await feed.until((es) => changesOf(es).length >= kinds.length, what);
  const changes = changesOf(events).map((e) => asChange(step, e));
  const got = changes.map((c) => `${c.kind}@${c.eventId}`).join(', ');
  if (changes.map((c) => c.kind).join() !== kinds.join()) fail(step, `changes ${kinds.join(', ')} of ${JSON.stringify(id)}`, got || describeEvents(events));
  let last = BigInt(after);
  for (const c of changes) {
    if (BigInt(c.eventId) <= last) fail(step, `event ids that increase past ${after}`, got);
    last = BigInt(c.eventId);
  }
}

/** Writes the same two changes to a row: its insert and a patch. */
async function insertAndPatch(t: CheckContext, id: string): Promise<void> {
  expectRow(`PUT ${t.rowPath(id)}`, await t.http.request('PUT', t.rowPath(id), { n: 1 }), 200, { id, n: 1 });
  expectRow(`PATCH ${t.rowPath(id)}`, await t.http.request('PATCH', t.rowPath(id), { n: 2 }), 200, { id, n: 2 });
}

const feedChecks: Check[] = [
  check('feed.head', 'the feed without a resume point is text/event-stream and opens with a reset carrying the head id (id: and data.eventId)', async (t) => {
    await headId(t);
  }),

  check('feed.heartbeat', 'heartbeats are events (event: heartbeat) without id:, with data {"intervalMs":N}', async (t) => {
    const step = `GET ${t.rowsPath()}/events`;
    const feed = await openFeed(t, step);
    const events = await feed.until((es) => es.some((e) => e.event === 'heartbeat'), `${step}: waiting for a heartbeat event`);
    const beat = events.find((e) => e.event === 'heartbeat');
    if (beat === undefined) return fail(step, 'a heartbeat', describeEvents(events));
    if (beat.id !== undefined) fail(step, 'a heartbeat without id:', `id: ${beat.id}`);
    const data = parseData(step, beat);
    if (typeof data.intervalMs !== 'number' || !(data.intervalMs > 0)) fail(step, 'a heartbeat with data {"intervalMs":<positive number>}', beat.data);
  }),

  check('feed.live', 'a write made while connected arrives as a change (inserted, updated, deleted) with its id: and the row id', async (t) => {
    const step = `GET ${t.rowsPath()}/events`;
    const feed = await openFeed(t, step);
    const events = await feed.until((es) => es.some(isMessage), `${step}: waiting for the first event`);
    const head = resetHead(step, events.find(isMessage), events);
    const id = t.newId('live');
    await insertAndPatch(t, id);
    const gone = await t.http.request('DELETE', t.rowPath(id));
    if (gone.status !== 204) fail(`DELETE ${t.rowPath(id)}`, '204', describeAnswer(gone));
    await expectChanges(step, feed, id, ['inserted', 'updated', 'deleted'], head);
  }),

  check('feed.resume-since', 'a feed opened with ?since=<id> first sends every change of the table made after it, in order', async (t) => {
    const head = await headId(t);
    const id = t.newId('since');
    await insertAndPatch(t, id);
    const step = `GET ${t.rowsPath()}/events?since=${head}`;
    const feed = await openFeed(t, step, `since=${head}`);
    await expectChanges(step, feed, id, ['inserted', 'updated'], head);
    const first = feed.events.find(isMessage);
    if (first?.event !== 'change') fail(step, 'the missed changes first, no reset', describeEvents(feed.events));
  }),

  check('feed.resume-last-event-id', 'a feed opened with the Last-Event-ID header resumes the same way', async (t) => {
    const head = await headId(t);
    const id = t.newId('last-event-id');
    await insertAndPatch(t, id);
    const step = `GET ${t.rowsPath()}/events with Last-Event-ID: ${head}`;
    const feed = await openFeed(t, step, undefined, { 'Last-Event-ID': head });
    await expectChanges(step, feed, id, ['inserted', 'updated'], head);
    const first = feed.events.find(isMessage);
    if (first?.event !== 'change') fail(step, 'the missed changes first, no reset', describeEvents(feed.events));
  }),

  check('feed.unknown-since', 'a resume point that is not a decimal id, or is past the head, gets a reset with the head id', async (t) => {
    for (const since of ['not-an-id', '99999999999999']) {
      const step = `GET ${t.rowsPath()}/events?since=${since}`;
      const feed = await openFeed(t, step, `since=${since}`);
      const events = await feed.until((es) => es.some(isMessage), `${step}: waiting for the first event`);
      feed.close();
      const head = resetHead(step, events.find(isMessage), events);
      if (since !== 'not-an-id' && BigInt(head) >= BigInt(since)) fail(step, `a reset to the head, below ${since}`, `reset ${head}`);
    }
  }),
];

/** Every check, in the order they run. */
/** A row's version as docs/protocol.md "Versions" puts it: the `_version` field, a string or a number. */
function versionIn(step: string, body: Record<string, unknown>, answer: Answer): string | number {
  const v = body._version;
  if (typeof v !== 'string' && typeof v !== 'number') fail(step, 'the row with its "_version" (a string or a number)', describeAnswer(answer));
  return v;
}

const etag = (v: string | number): string => `"${v}"`;

function expectEtag(step: string, answer: Answer, v: string | number): void {
  if (answer.headers.etag !== etag(v)) fail(step, `the header ETag: ${etag(v)}`, `ETag ${answer.headers.etag ?? '(none)'}`);
}

/** PUTs a row and answers its version. */
async function putVersioned(t: CheckContext, id: string, row: Record<string, unknown>): Promise<string | number> {
  const step = `PUT ${t.rowPath(id)}`;
  const answer = await t.http.request('PUT', t.rowPath(id), row);
  const body = expectRow(step, answer, 200, { id, ...row });
  const v = versionIn(step, body, answer);
  expectEtag(step, answer, v);
  return v;
}

const versionChecks: Check[] = [
  check('versions.field', 'rows carry "_version" in lists and row answers, and row answers send it as the ETag', async (t) => {
    const id = t.newId('versioned');
    const v = await putVersioned(t, id, { name: 'versioned' });
    const get = await t.http.request('GET', t.rowPath(id));
    const got = expectRow(`GET ${t.rowPath(id)}`, get, 200, { id, _version: v });
    expectEtag(`GET ${t.rowPath(id)}`, get, versionIn(`GET ${t.rowPath(id)}`, got, get));
    const step = `GET ${t.rowsPath('ipp=1000')}`;
    const list = await t.http.request('GET', t.rowsPath('ipp=1000'));
    const row = listBody(step, list).rows.find((r) => r.id === id);
    if (row === undefined || row._version !== v) fail(step, `the row ${JSON.stringify(id)} with "_version":${JSON.stringify(v)}`, describeAnswer(list));
  }),

  check('versions.bumped', 'every write gives the row a new version, and a "_version" sent in a body is not taken', async (t) => {
    const id = t.newId('bumped');
    const v1 = await putVersioned(t, id, { n: 1 });
    const step = `PATCH ${t.rowPath(id)} {"n":2,"_version":${JSON.stringify(v1)}}`;
    const patched = await t.http.request('PATCH', t.rowPath(id), { n: 2, _version: v1 });
    const v2 = versionIn(step, expectRow(step, patched, 200, { id, n: 2 }), patched);
    if (v2 === v1) fail(step, `a version other than ${JSON.stringify(v1)}`, describeAnswer(patched));
    expectEtag(step, patched, v2);
  }),

  check('versions.if-match', 'PATCH, PUT and DELETE with a stale If-Match are 412 precondition_failed with the current row and its ETag, and change nothing; the current one applies', async (t) => {
    const id = t.newId('if-match');
    const v1 = await putVersioned(t, id, { name: 'one' });
    const step = `PATCH ${t.rowPath(id)} with If-Match: ${etag(v1)}`;
    const ok = await t.http.request('PATCH', t.rowPath(id), { name: 'two' }, { 'If-Match': etag(v1) });
    const v2 = versionIn(step, expectRow(step, ok, 200, { id, name: 'two' }), ok);
    for (const method of ['PATCH', 'PUT', 'DELETE']) {
      const stale = `${method} ${t.rowPath(id)} with the stale If-Match: ${etag(v1)}`;
      const answer = await t.http.request(method, t.rowPath(id), method === 'DELETE' ? undefined : { name: 'three' }, { 'If-Match': etag(v1) });
      expectError(stale, answer, 412, 'precondition_failed');
      const row = (answer.json as Record<string, unknown>).row;
      if (!isObject(row) || row.name !== 'two' || row._version !== v2) fail(stale, `"row":{"id":...,"name":"two","_version":${JSON.stringify(v2)}} (the current row)`, describeAnswer(answer));
      expectEtag(stale, answer, v2);
    }
    expectRow(`GET ${t.rowPath(id)} after the refused writes`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'two', _version: v2 });
  }),
];

type BatchResult = { status: number; body: unknown; replayed?: boolean };

/** The advertised batch size (`Vantage-Batch` on a list answer), or undefined when the backend does not advertise batches. */
async function advertisedBatch(t: CheckContext): Promise<number | undefined> {
  const step = `GET ${t.rowsPath('ipp=1')}`;
  const answer = await t.http.request('GET', t.rowsPath('ipp=1'));
  const header = answer.headers['vantage-batch'];
  if (header === undefined) return undefined;
  const max = Number(header);
  if (!Number.isInteger(max) || max < 1) fail(step, 'Vantage-Batch: a positive whole number of ops, or no such header', `Vantage-Batch: ${String(header)}`);
  return max;
}

/** Sends a batch and answers its results, one per op. */
async function sendBatch(t: CheckContext, step: string, ops: unknown[]): Promise<BatchResult[]> {
  const answer = await t.http.request('POST', `${t.rowsPath()}/_batch`, { ops });
  const results = (answer.json as { results?: unknown } | undefined)?.results;
  if (answer.status !== 200 || !Array.isArray(results) || results.length !== ops.length || !results.every((r) => isObject(r) && typeof r.status === 'number')) {
    fail(step, `200 {"results":[...]} with ${ops.length} results of {"status":N,"body":...}`, describeAnswer(answer));
  }
  return results as BatchResult[];
}

const batchStatuses = (results: BatchResult[]) => results.map((r) => r.status).join(', ');

const batchChecks: Check[] = [
  check('batch.advertised', 'a backend advertises batches with Vantage-Batch on list answers, or answers POST _batch with 404 or 405 and applies nothing', async (t) => {
    if ((await advertisedBatch(t)) !== undefined) return;
    const id = t.newId('unbatched');
    const step = `POST ${t.rowsPath()}/_batch (batches not advertised)`;
    const answer = await t.http.request('POST', `${t.rowsPath()}/_batch`, { ops: [{ method: 'PUT', id, body: { name: 'batched' } }] });
    if (answer.status !== 404 && answer.status !== 405) fail(step, '404 or 405', describeAnswer(answer));
    await expectMissing(t, id, 'after the refused batch');
  }),

  check('batch.results', 'a batch applies its ops in order with a result per op, each as its own request would answer; a refused op changes nothing and does not stop the others', async (t) => {
    if ((await advertisedBatch(t)) === undefined) return;
    const [a, b, missing] = [t.newId('batch-a'), t.newId('batch-b'), t.newId('batch-missing')];
    const step = `POST ${t.rowsPath()}/_batch [POST ${a}, PATCH ${missing} (no such row), PUT ${b}, PATCH ${a}]`;
    const results = await sendBatch(t, step, [
      { method: 'POST', body: { id: a, name: 'a', n: 1 } },
      { method: 'PATCH', id: missing, body: { name: 'nothing' } },
      { method: 'PUT', id: b, body: { name: 'b' } },
      { method: 'PATCH', id: a, body: { n: 2 } },
    ]);
    if (batchStatuses(results) !== '201, 404, 200, 200') fail(step, 'results 201, 404, 200, 200', batchStatuses(results));
    const last = results[3]!.body;
    if (!isObject(last) || last.id !== a || last.n !== 2 || last.name !== 'a') fail(step, `the last result's body {"id":${JSON.stringify(a)},"name":"a","n":2,...}`, JSON.stringify(last));
    expectRow(`GET ${t.rowPath(a)} after the batch`, await t.http.request('GET', t.rowPath(a)), 200, { id: a, name: 'a', n: 2 });
    expectRow(`GET ${t.rowPath(b)} after the batch`, await t.http.request('GET', t.rowPath(b)), 200, { id: b, name: 'b' });
    await expectMissing(t, missing, 'after the batch refused its PATCH');
  }),

  check('batch.replay', 'a batch sent again with the same keys answers every op as the first time (replayed) and applies nothing twice', async (t) => {
    if ((await advertisedBatch(t)) === undefined) return;
    const [a, b] = [t.newId('replay-a'), t.newId('replay-b')];
    const ops = [
      { method: 'PUT', id: a, body: { name: 'a' }, key: t.newKey() },
      { method: 'POST', body: { id: b, name: 'b' }, key: t.newKey() },
      { method: 'PATCH', id: b, body: { n: 1 }, key: t.newKey() },
    ];
    const step = `POST ${t.rowsPath()}/_batch with keys`;
    const first = await sendBatch(t, step, ops);
    if (batchStatuses(first) !== '200, 201, 200') fail(step, 'results 200, 201, 200', batchStatuses(first));
    const again = await sendBatch(t, `${step}, sent again`, ops);
    const same = again.every((r, i) => r.status === first[i]!.status && JSON.stringify(r.body) === JSON.stringify(first[i]!.body));
    if (!same) fail(`${step}, sent again`, `the first results ${JSON.stringify(first)}`, JSON.stringify(again));
    // Nothing applied twice: the rows keep the versions the first batch gave them.
    expectRow(`GET ${t.rowPath(a)}`, await t.http.request('GET', t.rowPath(a)), 200, { id: a, name: 'a', _version: (first[0]!.body as Record<string, unknown>)._version });
    expectRow(`GET ${t.rowPath(b)}`, await t.http.request('GET', t.rowPath(b)), 200, { id: b, name: 'b', n: 1, _version: (first[2]!.body as Record<string, unknown>)._version });
  }),

  check('batch.if-match', 'an op with a stale ifMatch in a batch is 412 precondition_failed with the current row, and the others apply', async (t) => {
    if ((await advertisedBatch(t)) === undefined) return;
    const [id, other] = [t.newId('batch-match'), t.newId('batch-other')];
    const v1 = await putVersioned(t, id, { name: 'one' });
    const patched = await t.http.request('PATCH', t.rowPath(id), { name: 'two' });
    const v2 = versionIn(`PATCH ${t.rowPath(id)}`, expectRow(`PATCH ${t.rowPath(id)}`, patched, 200, { id }), patched);
    const step = `POST ${t.rowsPath()}/_batch [PATCH ${id} with the stale ifMatch ${etag(v1)}, PUT ${other}]`;
    const results = await sendBatch(t, step, [
      { method: 'PATCH', id, body: { name: 'three' }, ifMatch: etag(v1) },
      { method: 'PUT', id: other, body: { name: 'other' } },
    ]);
    if (batchStatuses(results) !== '412, 200') fail(step, 'results 412, 200', batchStatuses(results));
    const refused = results[0]!.body;
    const row = isObject(refused) ? refused.row : undefined;
    const code = isObject(refused) && isObject(refused.error) ? refused.error.code : undefined;
    if (code !== 'precondition_failed' || !isObject(row) || row._version !== v2) fail(step, `the first result {"error":{"code":"precondition_failed",...},"row":{..."_version":${JSON.stringify(v2)}}}`, JSON.stringify(refused));
    expectRow(`GET ${t.rowPath(id)} after the batch`, await t.http.request('GET', t.rowPath(id)), 200, { id, name: 'two' });
  }),
];

export const CHECKS: readonly Check[] = [...listChecks, ...rowChecks, ...idChecks, ...idempotencyChecks, ...versionChecks, ...batchChecks, ...errorChecks, ...feedChecks];
