import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, STORAGES, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  let master: TestMaster;
  const ids = (rows: { id: string }[]): string[] => rows.map((r) => r.id);

  beforeAll(async () => {
    master = await startTestMaster({ storage, seedRows: 1205 });
  });
  afterAll(() => master.dispose());

  it('generates zero-padded, sortable ids with a name and price', async () => {
    const res = await call(master.url, 'GET', '/api/products?ipp=3');
    expect(ids(res.body.rows)).toEqual(['p000001', 'p000002', 'p000003']);
    for (const row of res.body.rows) {
      expect(typeof row.name).toBe('string');
      expect(typeof row.price).toBe('number');
    }
  });

  it('defaults to page 1 of 50', async () => {
    const res = await call(master.url, 'GET', '/api/products');
    expect(res.body).toMatchObject({ page: 1, ipp: 50, total: 1205 });
    expect(res.body.rows).toHaveLength(50);
  });

  it('returns the last, partial page', async () => {
    const res = await call(master.url, 'GET', '/api/products?page=25&ipp=50');
    expect(res.body).toMatchObject({ page: 25, ipp: 50, total: 1205 });
    expect(ids(res.body.rows)).toEqual(['p001201', 'p001202', 'p001203', 'p001204', 'p001205']);
  });

  it('returns an empty page past the end', async () => {
    const res = await call(master.url, 'GET', '/api/products?page=26&ipp=50');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ rows: [], page: 26, ipp: 50, total: 1205 });
  });

  it('pages are contiguous and cover every row once', async () => {
    const seen: string[] = [];
    for (let page = 1; page <= 13; page++) {
      seen.push(...ids((await call(master.url, 'GET', `/api/products?page=${page}&ipp=100`)).body.rows));
    }
    expect(seen).toHaveLength(1205);
    expect(new Set(seen).size).toBe(1205);
    expect(seen).toEqual([...seen].sort());
  });

  it('accepts ipp from 1 to 1000', async () => {
    expect((await call(master.url, 'GET', '/api/products?ipp=1')).body.rows).toHaveLength(1);
    expect((await call(master.url, 'GET', '/api/products?ipp=1000')).body.rows).toHaveLength(1000);
  });

  it('rejects bad page and ipp values with 400', async () => {
    for (const query of ['page=0', 'page=-1', 'page=1.5', 'page=abc', 'page=', 'ipp=0', 'ipp=1001', 'ipp=x', 'page=99999999999']) {
      const res = await call(master.url, 'GET', `/api/products?${query}`);
      expect(res.status, query).toBe(400);
      expect(res.body.error.code).toBe('invalid_query');
    }
  });
});
