import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, STORAGES, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

describe.each(STORAGES)('row versions on %s', (storage) => {
  let master: TestMaster;
  let base: string;

  beforeAll(async () => {
    master = await startTestMaster({ storage, seed: true });
    base = master.url;
  });
  afterAll(() => master.dispose());

  const etag = (v: number) => `"${v}"`;

  it('every row carries _version, in lists and row answers, and row answers say it as the ETag', async () => {
    const list = await call(base, 'GET', '/api/products');
    for (const row of list.body.rows) expect(typeof row._version).toBe('number');
    const one = await call(base, 'GET', '/api/products/a');
    expect(one.body._version).toBe(list.body.rows[0]._version);
    expect(one.headers.get('etag')).toBe(etag(one.body._version));
    const created = await call(base, 'POST', '/api/v_answers', { id: 'x', n: 1 });
    expect(created.headers.get('etag')).toBe(etag(created.body._version));
  });

  it('every write moves the version on, and a row deleted and made again never repeats one', async () => {
    const seen: number[] = [];
    const put = await call(base, 'PUT', '/api/v_moves/r', { n: 1 });
    seen.push(put.body._version);
    seen.push((await call(base, 'PATCH', '/api/v_moves/r', { n: 2 })).body._version);
    seen.push((await call(base, 'PUT', '/api/v_moves/r', { n: 3 })).body._version);
    await call(base, 'DELETE', '/api/v_moves/r');
    seen.push((await call(base, 'PUT', '/api/v_moves/r', { n: 1 })).body._version);
    expect([...seen].sort((x, y) => x - y)).toEqual(seen);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('the version is the master\'s: a _version in a request body is ignored', async () => {
    const put = await call(base, 'PUT', '/api/v_owned/r', { n: 1, _version: 999_999 });
    expect(put.body._version).not.toBe(999_999);
    const patched = await call(base, 'PATCH', '/api/v_owned/r', { _version: 1 });
    expect(patched.body).toEqual({ id: 'r', n: 1, _version: patched.body._version });
    expect(patched.body._version).toBeGreaterThan(put.body._version);
  });

  it('If-Match with the current version applies; a stale one is answered 412 with the current row and its ETag, and nothing changes', async () => {
    const v1 = (await call(base, 'PUT', '/api/v_match/r', { name: 'one' })).body._version;
    const ok = await call(base, 'PATCH', '/api/v_match/r', { name: 'two' }, { 'If-Match': etag(v1) });
    expect(ok.status).toBe(200);
    const v2 = ok.body._version;
    for (const [method, body] of [['PATCH', { name: 'three' }], ['PUT', { name: 'three' }], ['DELETE', undefined]] as const) {
      const stale = await call(base, method, '/api/v_match/r', body, { 'If-Match': etag(v1) });
      expect(stale.status).toBe(412);
      expect(stale.body.error.code).toBe('precondition_failed');
      expect(stale.body.row).toEqual({ id: 'r', name: 'two', _version: v2 });
      expect(stale.headers.get('etag')).toBe(etag(v2));
    }
    expect((await call(base, 'GET', '/api/v_match/r')).body).toEqual({ id: 'r', name: 'two', _version: v2 });
    // A list of tags matches any of them; `*` matches any current row.
    expect((await call(base, 'PATCH', '/api/v_match/r', { n: 1 }, { 'If-Match': `${etag(v1)}, ${etag(v2)}` })).status).toBe(200);
    expect((await call(base, 'DELETE', '/api/v_match/r', undefined, { 'If-Match': '*' })).status).toBe(204);
    const gone = await call(base, 'PATCH', '/api/v_match/r', { n: 2 }, { 'If-Match': '*' });
    expect(gone.status).toBe(412);
    expect(gone.body.row).toBeNull();
  });

  it('a replay answers as the first call did, even once its If-Match is stale', async () => {
    const v1 = (await call(base, 'PUT', '/api/v_replay/r', { n: 1 })).body._version;
    const key = { 'Idempotency-Key': `v-replay-${storage}`, 'If-Match': etag(v1) };
    const first = await call(base, 'PATCH', '/api/v_replay/r', { n: 2 }, key);
    expect(first.status).toBe(200);
    const again = await call(base, 'PATCH', '/api/v_replay/r', { n: 2 }, key);
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(again.headers.get('etag')).toBe(etag(first.body._version));
  });
});
