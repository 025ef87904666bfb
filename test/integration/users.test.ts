/**
 * Users and sessions (issue 12) against the reference master in auth mode:
 * the real worker and page sides of the bridge in Node (fake IndexedDB), a
 * real master on loopback with users alice and bob and bearer tokens.
 */
import 'fake-indexeddb/auto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MasterClient } from '../../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../../demo-app/server/server.js';
import { connectLiveTable, provideCredentials, setCredentials, signIn, signOut, workerInfo, type BridgeOptions } from '../../src/page.js';
import { serveLiveTables, type WorkerScope } from '../../src/worker.js';
import { defaultEnv, LiveTable, RestTable, type Env, type LiveTableEvent } from '../../src/index.js';

const USERS = { alice: 'pw-alice', bob: 'pw-bob' };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let n = 0;

/** A master in auth mode whose clock the test moves (session expiry without sleeping). */
async function authMaster(sessionTtlMs = 60 * 60_000) {
  const dir = mkdtempSync(join(tmpdir(), 'vl-users-'));
  const clock = { now: Date.now() };
  const master: RunningMaster = await startMaster({ dbPath: join(dir, 'master.sqlite'), port: 0, seed: true, auth: { users: USERS, sessionTtlMs }, now: () => clock.now });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }), () => master.close());
  const client = new MasterClient(master.url, master.adminToken);
  const login = async (user: keyof typeof USERS) => (await client.login(user, USERS[user])).session.token;
  const rows = async (token: string) => (await new MasterClient(master.url, undefined, token).call('GET', '/api/products?page=1&ipp=100')).body.rows as Array<Record<string, unknown>>;
  return { master, clock, client, login, rows };
}

/** A service worker (the real serveLiveTables, with tables per user) and a page talking to it. Start another on the same names to play a restart. */
function worker(url: string, metaDbName: string, online: { value: boolean }) {
  const env: Env = { ...defaultEnv, isOnline: () => online.value };
  const listeners: Array<(event: unknown) => void> = [];
  const scope = { addEventListener: (type: string, l: (event: unknown) => void) => type === 'message' && listeners.push(l) } as unknown as WorkerScope;
  const requests: string[] = [];
  const fetch: typeof globalThis.fetch = async (input, init) => {
    requests.push(`${init?.method ?? 'GET'} ${new URL(String(input)).pathname}`);
    return globalThis.fetch(input, init);
  };
  serveLiveTables(
    (user) => ({ products: new LiveTable(new RestTable(`${url}/api`, 'products', { fetch, headers: () => user.bearer() }), 'products', user.cache, { queue: user.queue, env }) }),
    { scope, metaDbName },
  );
  const active = {
    postMessage(data: unknown, [port]: MessagePort[]) {
      for (const l of listeners) l({ data, ports: [port], waitUntil: () => {} });
    },
  };
  const bridge: BridgeOptions = { container: { ready: Promise.resolve({ active }) } as unknown as Pick<ServiceWorkerContainer, 'ready'> };
  return { bridge, requests, products: connectLiveTable('products', bridge) };
}

/** The next event of a type from any tab's table, as pages hear them. */
function next(products: ReturnType<typeof connectLiveTable>, match: (e: LiveTableEvent) => boolean): Promise<LiveTableEvent> {
  return new Promise((resolve) => {
    const off = products.subscribe((e) => match(e) && (off(), resolve(e)));
  });
}

describe('users and sessions (issue 12)', () => {
  it('1. Bob never gets Alice\'s rows from the cache, online or offline', async () => {
    const { login, master } = await authMaster();
    const online = { value: true };
    const { bridge, products } = worker(master.url, `users-meta-${++n}`, online);
    const alice = await login('alice');
    await new MasterClient(master.url, undefined, alice).call('PATCH', '/api/products/a', { name: 'Alice Pie' });
    await signIn('alice', { ...bridge, token: alice });
    expect((await products.read({ page: 1 })).rows.find(([id]) => id === 'a')?.[1]).toMatchObject({ name: 'Alice Pie' });
    await signOut({ ...bridge, pending: 'keep' });
    await expect(products.read({ page: 1 })).rejects.toMatchObject({ code: 'signed_out' });

    online.value = false;
    await signIn('bob', { ...bridge, token: await login('bob') });
    await expect(products.read({ page: 1 })).rejects.toMatchObject({ code: 'offline_miss' }); // not Alice's cached page
    online.value = true;
    const bobs = await products.read({ page: 1 });
    expect(bobs.source).toBe('master');
    expect(bobs.rows.find(([id]) => id === 'a')?.[1]).toMatchObject({ name: 'Apple Pie' });
  });

  it('2. Alice\'s offline write is sealed while Bob is signed in, and applied once in her account when she is back', async () => {
    const { login, master, rows, client } = await authMaster();
    const online = { value: false };
    const { bridge, products, requests } = worker(master.url, `users-meta-${++n}`, online);
    const alice = await login('alice');
    await signIn('alice', { ...bridge, token: alice });
    await products.insert('alice-1', { name: 'Offline Tart', price: 7 });
    await signOut({ ...bridge, pending: 'keep' });

    const bob = await login('bob');
    await signIn('bob', { ...bridge, token: bob });
    online.value = true;
    await products.flush();
    await products.patch('b', { price: 1 }, { wait: 'applied' });
    expect(requests.filter((r) => !r.startsWith('GET'))).toEqual(['PATCH /api/products/b']);
    expect((await rows(bob)).map((r) => r.id)).not.toContain('alice-1');

    await signIn('alice', { ...bridge, token: alice });
    await expect.poll(async () => (await rows(alice)).filter((r) => r.id === 'alice-1')).toHaveLength(1);
    expect(requests.filter((r) => r === 'POST /api/products')).toHaveLength(1);
    expect((await client.stats()).writes).toBe(2);
  });

  it('3. a session that expires with ten writes queued pauses the table, kills nothing, and new credentials send all ten once', async () => {
    const { login, master, clock, rows } = await authMaster(60_000);
    const online = { value: false };
    const { bridge, products } = worker(master.url, `users-meta-${++n}`, online);
    await signIn('alice', { ...bridge, token: await login('alice') });
    for (let i = 0; i < 10; i++) await products.patch(['a', 'b', 'c'][i % 3]!, { price: 100 + i });
    clock.now += 61_000; // hours offline: the session is gone
    online.value = true;
    const paused = next(products, (e) => e.type === 'auth' && e.state === 'required');
    await products.flush();
    await paused;
    const info = await workerInfo(bridge);
    expect(info.tables[0]).toMatchObject({ pending: 10, dead: 0, authRequired: true });

    const fresh = await login('alice');
    await setCredentials(fresh, bridge);
    await expect.poll(async () => (await workerInfo(bridge)).tables[0]!.pending).toBe(0);
    expect((await workerInfo(bridge)).tables[0]).toMatchObject({ dead: 0, authRequired: false });
    const prices = Object.fromEntries((await rows(fresh)).map((r) => [r.id, r.price]));
    expect(prices).toMatchObject({ a: 109, b: 107, c: 108 });
  });

  it('4. a bearer token kept only in page memory: a restarted worker asks the pages for it, and sends nothing without one', async () => {
    const { login, master, rows, client } = await authMaster();
    const online = { value: false };
    const meta = `users-meta-${++n}`;
    const first = worker(master.url, meta, online);
    const token = await login('alice');
    await signIn('alice', { ...first.bridge, token });
    await first.products.patch('a', { price: 55 });
    await first.products.patch('b', { price: 56 });

    // The worker is stopped and started again: it remembers who is signed in, not the token.
    const second = worker(master.url, meta, online);
    online.value = true;
    const paused = next(second.products, (e) => e.type === 'auth' && e.state === 'required');
    await second.products.flush();
    await paused;
    expect(second.requests).toEqual([]); // nothing went out without credentials
    expect((await workerInfo(second.bridge)).tables[0]).toMatchObject({ pending: 2, authRequired: true, name: 'products' });

    // A page that holds the token hands it over.
    const stop = provideCredentials(() => token, second.bridge);
    cleanups.push(stop);
    await expect.poll(async () => (await workerInfo(second.bridge)).tables[0]!.pending).toBe(0);
    expect(Object.fromEntries((await rows(token)).map((r) => [r.id, r.price]))).toMatchObject({ a: 55, b: 56 });
    expect((await client.stats()).writes).toBe(2);
  });

  it('5. sign-out with wipe leaves none of Alice\'s data in IndexedDB, and the next call works without a reload', async () => {
    const { login, master } = await authMaster();
    const online = { value: true };
    const { bridge, products } = worker(master.url, `users-meta-${++n}`, online);
    await signIn('alice', { ...bridge, token: await login('alice') });
    await products.read({ page: 1 });
    online.value = false;
    await products.patch('a', { price: 3 });
    await expect(signOut({ ...bridge, pending: 'keep', wipe: true })).rejects.toMatchObject({ code: 'invalid_input' });
    await signOut({ ...bridge, pending: 'discard', wipe: true });
    const names = (await indexedDB.databases()).map((d) => d.name);
    expect(names.filter((name) => name?.includes('alice'))).toEqual([]);

    online.value = true;
    await signIn('bob', { ...bridge, token: await login('bob') });
    expect((await products.read({ page: 1 })).source).toBe('master');
    // A page deleting Bob's queue database under the running worker: the worker reopens it and keeps working.
    await new Promise((resolve, reject) => Object.assign(indexedDB.deleteDatabase('vantage-live-queue:bob'), { onsuccess: resolve, onerror: reject }));
    expect(await products.patch('c', { price: 4 }, { wait: 'applied' })).toMatchObject({ price: 4 });
  });
});
