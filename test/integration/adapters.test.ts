/**
 * Each shipped REST adapter against a real server of its kind: json-server
 * 0.17 from npm in a child process, and a PostgREST-compatible server over
 * the test Postgres cluster. Paging, get, every write kind, a write whose
 * answer is lost after the backend committed it, and errors.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureDataFile, startJsonServer } from '../../demo-app/json-server.js';
import { newTestDatabase } from '../../demo-app/server/testkit.js';
import {
  AuthRequiredError,
  jsonServerAdapter,
  LiveTable,
  MasterRejectedError,
  MasterUnavailableError,
  MemCache,
  MemQueue,
  PollingLiveStream,
  postgrestAdapter,
  RestTable,
  type RestAdapter,
  type Row,
} from '../../src/index.js';
import { startPostgrestServer } from '../support/postgrest.js';

interface Backend {
  apiBase: string;
  /** Every stored row, read around the adapter. */
  stored(): Promise<Row[]>;
  stop(): Promise<void>;
}

const SEED: Row[] = Array.from({ length: 30 }, (_, i) => ({ id: `p${String(i + 1).padStart(2, '0')}`, name: `Product ${i + 1}`, price: i + 1 }));

async function jsonServerBackend(): Promise<Backend> {
  const file = join(mkdtempSync(join(tmpdir(), 'vl-json-server-')), 'db.json');
  ensureDataFile(file, SEED);
  const server = await startJsonServer(file);
  return {
    apiBase: server.url,
    stored: async () => (await (await fetch(`${server.url}/products`)).json()) as Row[],
    stop: () => server.stop(),
  };
}

async function postgrestBackend(): Promise<Backend> {
  const server = await startPostgrestServer(await newTestDatabase());
  for (const row of SEED) await server.pool.query('INSERT INTO products (id, name, price) VALUES ($1, $2, $3)', [row.id, row.name, row.price]);
  return {
    apiBase: server.url,
    stored: async () => (await server.pool.query('SELECT * FROM products ORDER BY id')).rows as Row[],
    stop: () => server.close(),
  };
}

/** A fetch whose next answers to `method` are lost after the backend handled them: what a dropped connection or a killed worker does. */
function lossyFetch() {
  let drops = 0;
  let method = '';
  return {
    dropNext(m: string, n = 1) {
      method = m;
      drops = n;
    },
    fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await fetch(input, init);
      if (drops > 0 && init?.method === method) {
        drops--;
        await res.arrayBuffer();
        throw new TypeError('fetch failed: the connection closed before the answer arrived');
      }
      return res;
    }) as typeof fetch,
  };
}

describe.each<[string, RestAdapter, () => Promise<Backend>]>([
  ['json-server', jsonServerAdapter, jsonServerBackend],
  ['PostgREST', postgrestAdapter, postgrestBackend],
])('the %s adapter against a real server', (_name, adapter, start) => {
  let backend: Backend;
  let net: ReturnType<typeof lossyFetch>;
  let products: RestTable;
  const count = async (id: string) => (await backend.stored()).filter((r) => r.id === id).length;

  beforeAll(async () => {
    backend = await start();
    net = lossyFetch();
    products = new RestTable(backend.apiBase, 'products', { adapter, fetch: net.fetch });
  });
  afterAll(() => backend?.stop());

  it('reads pages with the total, a whole table, and one row', async () => {
    const { rows, total } = await products.page({ page: 2, ipp: 10 });
    expect(total).toBe(30);
    expect(rows.map(([id]) => id)).toEqual(['p11', 'p12', 'p13', 'p14', 'p15', 'p16', 'p17', 'p18', 'p19', 'p20']);
    expect(rows[0]![1]).toEqual({ id: 'p11', name: 'Product 11', price: 11 });
    expect((await products.page({ page: 4, ipp: 10 })).rows).toEqual([]);
    expect((await products.list()).length).toBeGreaterThanOrEqual(30);
    expect(await products.get('p07')).toEqual({ id: 'p07', name: 'Product 7', price: 7 });
    expect(await products.get('nothing-here')).toBeUndefined();
  });

  it('inserts with and without an id, replaces, patches and deletes', async () => {
    expect(await products.insert('w1', { name: 'Waffle', price: 3 })).toEqual({ id: 'w1', name: 'Waffle', price: 3 });
    const serverId = await products.insertReturnId({ name: 'Server id', price: 1 });
    expect(serverId).toMatch(/\w/);
    expect(await products.get(serverId)).toMatchObject({ id: serverId, name: 'Server id' });
    expect(await products.replace('w1', { name: 'Waffle XL', price: 4 })).toEqual({ id: 'w1', name: 'Waffle XL', price: 4 });
    expect(await products.patch('w1', { price: 5 })).toEqual({ id: 'w1', name: 'Waffle XL', price: 5 });
    await products.delete('w1');
    expect(await products.get('w1')).toBeUndefined();
    await products.delete('w1'); // already gone: what was asked
    const missing = await products.patch('w1', { price: 6 }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(MasterRejectedError);
    expect(missing).toMatchObject({ status: 404 });
  });

  it('says it keeps no idempotency keys, and claims no exactly-once', () => {
    expect(products.delivery).toMatchObject({ idempotencyKeys: false, ifMatch: false });
    expect(products.delivery.summary).toMatch(/^at least once/);
    expect(products.delivery.summary).toMatch(/insertReturnId may add a second row/);
  });

  it('an insert with a client id whose answer was lost counts as applied on retry, once; a different row under that id is refused', async () => {
    net.dropNext('POST');
    await expect(products.insert('lost1', { name: 'Lost', price: 2 })).rejects.toBeInstanceOf(MasterUnavailableError);
    expect(await count('lost1')).toBe(1); // the backend committed it
    expect(await products.insert('lost1', { name: 'Lost', price: 2 })).toEqual({ id: 'lost1', name: 'Lost', price: 2 });
    expect(await count('lost1')).toBe(1);

    const other = await products.insert('lost1', { name: 'Someone else', price: 9 }).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(MasterRejectedError);
    expect(other).toMatchObject({ status: 409 });
  });

  it('through a LiveTable queue: the lost insert is retried and applied once', async () => {
    const live = new LiveTable(products, 'products', new MemCache(), { queue: new MemQueue(), retryPolicy: { baseMs: 10, capMs: 50 } });
    net.dropNext('POST');
    expect(await live.insert('lost2', { name: 'Queued', price: 3 })).toEqual({ id: 'lost2', name: 'Queued', price: 3 });
    expect(await count('lost2')).toBe(1);
    live.close();
  });

  it('a lost insertReturnId answer may add the row twice, as the guarantee says', async () => {
    const before = (await backend.stored()).length;
    net.dropNext('POST');
    await expect(products.insertReturnId({ name: 'Twice', price: 1 })).rejects.toBeInstanceOf(MasterUnavailableError);
    await products.insertReturnId({ name: 'Twice', price: 1 });
    expect((await backend.stored()).filter((r) => r.name === 'Twice')).toHaveLength(2);
    expect((await backend.stored()).length).toBe(before + 2);
  });

  it('a lost patch answer: the retry applies the same change again, to the same result', async () => {
    net.dropNext('PATCH');
    await expect(products.patch('p03', { price: 33 })).rejects.toBeInstanceOf(MasterUnavailableError);
    expect(await products.patch('p03', { price: 33 })).toEqual({ id: 'p03', name: 'Product 3', price: 33 });
  });

  it('a polling feed makes reads fresh: a change made on the backend invalidates the cached page', async () => {
    const stream = new PollingLiveStream({ intervalMs: 50, probe: () => products.page({ page: 1, ipp: 10 }) });
    const live = new LiveTable(products, 'products', new MemCache(), { stream, masterIpp: 10 });
    const heard = () => new Promise<void>((resolve) => live.subscribe((e) => e.type === 'invalidated' && e.reason === 'event' && resolve()));
    await heard(); // the first look
    expect((await live.read({ page: 1 })).source).toBe('master');
    expect((await live.read({ page: 1 })).source).toBe('cache');
    const changed = heard();
    await new RestTable(backend.apiBase, 'products', { adapter }).patch('p02', { name: 'Renamed elsewhere' });
    await changed;
    const read = await live.read({ page: 1 });
    expect(read.source).toBe('master');
    expect(read.rows.find(([id]) => id === 'p02')?.[1]).toMatchObject({ name: 'Renamed elsewhere' });
    live.close();
  });

  it('turns failures into typed errors', async () => {
    await expect(new RestTable(backend.apiBase, 'no_such_table', { adapter }).list({ page: 1, ipp: 5 })).rejects.toMatchObject({ code: 'master_rejected', status: 404 });
    const down = new RestTable('http://127.0.0.1:9', 'products', { adapter, timeoutMs: 2_000 });
    const err = await down.get('p01').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterUnavailableError);
    expect(err).toMatchObject({ transient: true });
    const signedOut = new RestTable(backend.apiBase, 'products', { adapter, authStatuses: [200] });
    await expect(signedOut.get('p01')).rejects.toBeInstanceOf(AuthRequiredError);
  });
});

describe('an adapter that cannot tell a duplicate id from a server fault (json-server answers it with a 500)', () => {
  it('a lost insert answer still counts as applied on retry when the stored row is the one sent; another row there stays a transient failure', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'vl-json-server-')), 'db.json');
    ensureDataFile(file, SEED);
    const server = await startJsonServer(file);
    try {
      const net = lossyFetch();
      const plain: RestAdapter = { ...jsonServerAdapter, readFailure: (a) => ({ code: `http_${a.status}`, message: a.text.slice(0, 80) }) };
      const products = new RestTable(server.url, 'products', { adapter: plain, fetch: net.fetch });
      net.dropNext('POST');
      await expect(products.insert('fault1', { name: 'Lost', price: 2 })).rejects.toBeInstanceOf(MasterUnavailableError);
      expect(await products.insert('fault1', { name: 'Lost', price: 2 })).toEqual({ id: 'fault1', name: 'Lost', price: 2 });
      await expect(products.insert('fault1', { name: 'Other', price: 2 })).rejects.toMatchObject({ status: 500, transient: true });
    } finally {
      await server.stop();
    }
  });
});

describe('PostgREST errors in its own shape', () => {
  let backend: Awaited<ReturnType<typeof startPostgrestServer>>;
  let products: RestTable;
  beforeAll(async () => {
    backend = await startPostgrestServer(await newTestDatabase());
    products = new RestTable(backend.url, 'products', { adapter: postgrestAdapter });
  });
  afterAll(() => backend?.close());

  it('a duplicate key is a 409 (23505); a bad value, a missing NOT NULL and an unknown column are 400s with their codes', async () => {
    await products.insert('d1', { name: 'One', price: 1 });
    const rejected = async (p: Promise<unknown>) => (await p.catch((e: unknown) => e)) as MasterRejectedError;
    const bad = await rejected(products.insert('d2', { name: 'Two', price: 'not a number' }));
    expect(bad).toBeInstanceOf(MasterRejectedError);
    expect(bad).toMatchObject({ status: 400, masterCode: '22P02' });
    expect(await rejected(products.insertReturnId({ price: 1 }))).toMatchObject({ status: 400, masterCode: '23502' });
    expect(await rejected(products.patch('d1', { colour: 'red' }))).toMatchObject({ status: 400, masterCode: 'PGRST204' });
    expect(await rejected(new RestTable(backend.url, 'products', { adapter: postgrestAdapter, idField: 'sku' }).list({ page: 1, ipp: 5 }))).toMatchObject({
      status: 400,
      masterCode: '42703',
    });
    // Someone else's row under the id: a real conflict, refused with PostgREST's code.
    expect(await rejected(products.insert('d1', { name: 'Not one', price: 1 }))).toMatchObject({ status: 409, masterCode: '23505' });
  });

  it('pages past the end answer 416 (PGRST103), refused; deleteAll empties the table', async () => {
    expect(await new RestTable(backend.url, 'products', { adapter: postgrestAdapter }).page({ page: 50, ipp: 10 }).catch((e: unknown) => e)).toMatchObject({
      status: 416,
      masterCode: 'PGRST103',
    });
    await products.deleteAll();
    expect(await products.page({ page: 1, ipp: 10 })).toEqual({ rows: [], total: 0 });
  });
});
