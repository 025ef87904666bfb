/**
 * Reads a page answers itself (README, "Reads in the page"): the coherence
 * rules of PageReads with a scripted plan and IndexedDB read; the page's read
 * of the worker's databases against the real IdbCache and IdbQueue (fake
 * IndexedDB); and the real page and worker sides of the bridge in Node, a
 * page-answered read compared with the worker's answer over the same cache.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { IdbCache } from '../src/cache/idb-cache.js';
import type { CachedRows } from '../src/cache/types.js';
import { openPlanDbs, readFresh } from '../src/bridge/page-idb.js';
import { PageReads } from '../src/bridge/page-reads.js';
import type { PageReadPlan } from '../src/bridge/protocol.js';
import { IdbQueue } from '../src/queue/idb-queue.js';
import { connectLiveTable, signIn, signOut } from '../src/page.js';
import { serveLiveTables, type WorkerScope } from '../src/worker.js';
import { LiveTable, MemoryTable, type LiveTableEvent, type ReadResult } from '../src/index.js';
import { ManualEnv } from './support/manual-env.js';
import { ObservedTable, products } from './support/tables.js';

let n = 0;
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const PLAN: PageReadPlan = { cacheKey: 'products', masterIpp: 50, cacheDb: 'c', queueDb: 'q', queueTable: 'products' };

function hit(cacheKey: string, extra: Partial<ReadResult> = {}): ReadResult {
  return { rows: [['a', { id: 'a', price: 1 }]], cacheKey, source: 'cache', stale: false, revalidating: false, fetchedAt: 1_000_000, pendingIds: [], conflicts: [], ...extra };
}

/** A PageReads whose plan and IndexedDB reads the test answers. */
function scripted(opts: { plan?: PageReadPlan | null; maxEntries?: number } = {}) {
  const env = new ManualEnv();
  const entries = new Map<string, CachedRows>();
  let hold: Promise<void> | undefined;
  const reads = new PageReads({
    plan: async () => (opts.plan === undefined ? PLAN : opts.plan),
    readFresh: async (_plan, key) => {
      await hold;
      return entries.get(key);
    },
    now: env.now,
    maxEntries: opts.maxEntries,
  });
  return {
    reads,
    env,
    entries,
    /** IndexedDB reads wait until the returned function is called. */
    holdReads: () => {
      let release = () => {};
      hold = new Promise((resolve) => (release = resolve));
      return release;
    },
    /** Ask for the plan (the first keyOf does) and let it arrive. */
    async ready() {
      reads.keyOf('read', { page: 1 });
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('PageReads: what a tab keeps, and when it forgets', () => {
  it('knows no key until the plan is in, and none at all when the worker says the page cannot read', async () => {
    const s = scripted();
    expect(s.reads.keyOf('read', { page: 2 })).toBeUndefined(); // asks for the plan
    await s.ready();
    expect(s.reads.keyOf('read', { page: 2 })).toBe('products/page_2');
    expect(s.reads.keyOf('read', { page: 2, ipp: 10 })).toBe('products/page_2_ipp_10');
    expect(s.reads.keyOf('read', undefined)).toBe('products/all');
    expect(s.reads.keyOf('readOne', 'a')).toBe('products/id/a');
    // Inputs the worker refuses stay the worker's, so the error is its own.
    expect(s.reads.keyOf('read', { page: 0 })).toBeUndefined();
    expect(s.reads.keyOf('readOne', 'a/b')).toBeUndefined();
    const none = scripted({ plan: null });
    await none.ready();
    expect(none.reads.keyOf('read', { page: 1 })).toBeUndefined();
  });

  it("keeps the worker's answer as the hit it is from now on, and answers it again", async () => {
    const s = scripted();
    await s.ready();
    s.reads.keep(hit('products/page_1', { source: 'master' }), s.reads.mark);
    expect(s.reads.kept('products/page_1')).toEqual(hit('products/page_1'));
  });

  it('keeps nothing a later read would not repeat: stale, revalidating, or another table', async () => {
    const s = scripted();
    await s.ready();
    s.reads.keep(hit('products/page_1', { stale: true }), s.reads.mark);
    s.reads.keep(hit('products/page_2', { revalidating: true, stale: true }), s.reads.mark);
    s.reads.keep(hit('other/page_1'), s.reads.mark);
    expect([s.reads.kept('products/page_1'), s.reads.kept('products/page_2'), s.reads.kept('other/page_1')]).toEqual([undefined, undefined, undefined]);
  });

  it('forgets everything on any change of the table, and nothing on a hit elsewhere or a retry', async () => {
    const s = scripted();
    await s.ready();
    const changes: LiveTableEvent[] = [
      { type: 'invalidated', prefix: 'products/', reason: 'event' },
      { type: 'queue', pending: 1, dead: 0 },
      { type: 'refreshed', cacheKey: 'products/page_9' },
      { type: 'live', event: { kind: 'updated', id: 'a' } },
    ];
    for (const change of changes) {
      s.reads.keep(hit('products/page_1'), s.reads.mark);
      s.reads.hear({ type: 'read', cacheKey: 'products/page_1', outcome: 'hit', ms: 1 });
      s.reads.hear({ type: 'stream', state: 'open' });
      expect(s.reads.kept('products/page_1')).toBeDefined();
      s.reads.hear(change);
      expect(s.reads.kept('products/page_1'), change.type).toBeUndefined();
    }
  });

  it('forgets the one key a miss elsewhere stored anew', async () => {
    const s = scripted();
    await s.ready();
    s.reads.keep(hit('products/page_1'), s.reads.mark);
    s.reads.keep(hit('products/page_2'), s.reads.mark);
    s.reads.hear({ type: 'read', cacheKey: 'products/page_2', outcome: 'miss', ms: 1 });
    expect(s.reads.kept('products/page_1')).toBeDefined();
    expect(s.reads.kept('products/page_2')).toBeUndefined();
  });

  it("does not keep a worker's answer when a change was heard while it was on its way", async () => {
    const s = scripted();
    await s.ready();
    const mark = s.reads.mark; // the read is sent
    s.reads.hear({ type: 'applied', op: {} as never, result: {} }); // heard before its answer
    s.reads.keep(hit('products/page_1'), mark);
    expect(s.reads.kept('products/page_1')).toBeUndefined();
  });

  it('leaves a read to the worker, and keeps nothing, when a change is heard while the page reads IndexedDB', async () => {
    const s = scripted();
    await s.ready();
    s.entries.set('products/page_1', { rows: [['a', { id: 'a', price: 1 }]], fetchedAt: 1_000_000 });
    const release = s.holdReads();
    const reading = s.reads.fromIdb('products/page_1');
    s.reads.hear({ type: 'invalidated', prefix: 'products/', reason: 'write' });
    release();
    expect(await reading).toBeUndefined();
    expect(s.reads.kept('products/page_1')).toBeUndefined();
    // With nothing heard in between, the same read is answered and kept.
    expect(await s.reads.fromIdb('products/page_1')).toEqual(hit('products/page_1'));
    expect(s.reads.kept('products/page_1')).toEqual(hit('products/page_1'));
  });

  it('forgets the plan and every read on another user or worker, and takes no plan asked for before', async () => {
    let answer: (plan: PageReadPlan) => void = () => {};
    const env = new ManualEnv();
    const reads = new PageReads({ plan: () => new Promise((resolve) => (answer = resolve)), readFresh: async () => undefined, now: env.now });
    reads.keyOf('read', { page: 1 }); // asks
    reads.reset(); // alice signed out in another tab while the plan was on its way
    answer({ ...PLAN, session: { user: 'alice', metaDb: 'm' } });
    await new Promise((r) => setImmediate(r));
    expect(reads.keyOf('read', { page: 1 })).toBeUndefined(); // asks again
    answer({ ...PLAN, session: { user: 'bob', metaDb: 'm' } });
    await new Promise((r) => setImmediate(r));
    expect(reads.keyOf('read', { page: 1 })).toBe('products/page_1');
    reads.keep(hit('products/page_1'), reads.mark);
    reads.reset();
    expect(reads.kept('products/page_1')).toBeUndefined();
  });

  it("answers nothing older than the table's maxAgeMs, as the worker would refetch it", async () => {
    const s = scripted({ plan: { ...PLAN, maxAgeMs: 1_000 } });
    await s.ready();
    s.reads.keep(hit('products/page_1', { fetchedAt: s.env.now() }), s.reads.mark);
    s.env.advance(1_000);
    expect(s.reads.kept('products/page_1')).toBeDefined();
    s.env.advance(1);
    expect(s.reads.kept('products/page_1')).toBeUndefined();
    s.entries.set('products/page_2', { rows: [], fetchedAt: s.env.now() - 1_001 });
    expect(await s.reads.fromIdb('products/page_2')).toBeUndefined();
  });

  it('keeps at most maxEntries reads, the least recently used going first', async () => {
    const s = scripted({ maxEntries: 2 });
    await s.ready();
    s.reads.keep(hit('products/page_1'), s.reads.mark);
    s.reads.keep(hit('products/page_2'), s.reads.mark);
    s.reads.kept('products/page_1'); // used: page 2 is now the oldest
    s.reads.keep(hit('products/page_3'), s.reads.mark);
    expect(['products/page_1', 'products/page_2', 'products/page_3'].map((k) => s.reads.kept(k) !== undefined)).toEqual([true, false, true]);
  });
});

describe("the page's read of the worker's databases", () => {
  async function databases() {
    const id = ++n;
    const cache = new IdbCache(`pr-cache-${id}`);
    const queue = new IdbQueue(`pr-queue-${id}`);
    cleanups.push(() => cache.close(), () => queue.close());
    const plan: PageReadPlan = { cacheKey: 'products', masterIpp: 50, cacheDb: cache.dbName, queueDb: queue.dbName, queueTable: 'products' };
    await cache.put('products/page_1', { rows: products(), fetchedAt: 5, generation: await cache.generation('products/') });
    await queue.counts('products'); // the worker has opened its queue
    await openPlanDbs(plan, 0);
    return { cache, queue, plan };
  }

  it('reads a fresh entry, and nothing once its table is invalidated', async () => {
    const { cache, plan } = await databases();
    expect(await readFresh(plan, 'products/page_1', 0)).toEqual({ rows: products(), fetchedAt: 5 });
    expect(await readFresh(plan, 'products/page_2', 0)).toBeUndefined();
    await cache.invalidatePrefix('products/');
    expect(await readFresh(plan, 'products/page_1', 0)).toBeUndefined();
  });

  it('reads nothing while a write of the table is pending or dead: the overlay is the worker\'s', async () => {
    const { queue, plan } = await databases();
    await queue.enqueue({ opId: 'op-1', table: 'products', idempotencyKey: 'k-1', enqueuedAt: 1, kind: 'patch', id: 'a', row: { price: 2 } });
    expect(await readFresh(plan, 'products/page_1', 0)).toBeUndefined();
    expect(await readFresh({ ...plan, queueTable: 'orders' }, 'products/page_1', 0)).toBeDefined(); // another table's writes change nothing here
    await queue.kill('op-1', { status: 422, code: 'rejected', message: 'no' }, 2, 'rejected');
    expect(await queue.counts('products')).toEqual({ pending: 0, dead: 1 });
    expect(await readFresh(plan, 'products/page_1', 0)).toBeUndefined();
  });

  it('reads nothing of a user who is no longer the one signed in', async () => {
    const { plan } = await databases();
    const metaDb = `pr-meta-${n}`;
    // The worker's meta database, as serveLiveTables lays it out.
    const { openDB } = await import('idb');
    const meta = await openDB(metaDb, 2, { upgrade: (db) => ['lastEventId', 'session'].forEach((s) => db.createObjectStore(s)) });
    cleanups.push(() => meta.close());
    await meta.put('session', 'alice', 'user');
    const alices = { ...plan, session: { user: 'alice', metaDb } };
    await openPlanDbs(alices, 0);
    expect(await readFresh(alices, 'products/page_1', 0)).toBeDefined();
    await meta.put('session', 'bob', 'user');
    expect(await readFresh(alices, 'products/page_1', 0)).toBeUndefined();
    await meta.delete('session', 'user');
    expect(await readFresh(alices, 'products/page_1', 0)).toBeUndefined();
  });

  it('never creates a database it does not find, nor reads one at another version', async () => {
    const plan: PageReadPlan = { cacheKey: 'products', masterIpp: 50, cacheDb: `pr-missing-${++n}`, queueDb: `pr-missing-q-${n}`, queueTable: 'products' };
    await openPlanDbs(plan, 0);
    expect(await readFresh(plan, 'products/page_1', 10_000)).toBeUndefined();
    expect((await indexedDB.databases()).map((d) => d.name)).not.toContain(plan.cacheDb);
    const { openDB } = await import('idb');
    const newer = await openDB(`pr-newer-${n}`, 99, { upgrade: (db) => void db.createObjectStore('entries') });
    newer.close();
    const ahead = { ...plan, cacheDb: `pr-newer-${n}` };
    await openPlanDbs(ahead, 0);
    expect(await readFresh(ahead, 'products/page_1', 20_000)).toBeUndefined();
  });
});

describe('the page path and the worker path over the same cache, in Node', () => {
  /** A worker serving per-user tables (every user with rows of their own) and tabs that connect to it. */
  function worker() {
    const id = ++n;
    const workerEnv = new ManualEnv();
    const masters = new Map<string, ObservedTable>();
    const masterOf = (user: string) => {
      if (!masters.has(user)) masters.set(user, new ObservedTable(new MemoryTable('products', products().map(([k, row]) => [k, { ...row, name: `${user}'s ${row.name}` }]))));
      return masters.get(user)!;
    };
    const listeners: Array<(event: unknown) => void> = [];
    const scope = { addEventListener: (type: string, l: (event: unknown) => void) => type === 'message' && listeners.push(l) } as unknown as WorkerScope;
    const tables: LiveTable[] = [];
    serveLiveTables(
      (user) => {
        const table = new LiveTable(masterOf(user.user), 'products', user.cache, { queue: user.queue, env: workerEnv });
        tables.push(table);
        return { products: table };
      },
      { scope, metaDbName: `pr-bridge-meta-${id}` },
    );
    cleanups.push(() => tables.forEach((t) => t.close()));
    /** A tab: its own container (so its own page reads), counting the messages it sends the worker. */
    const tab = (pageReads = true) => {
      let sent = 0;
      const active = {
        postMessage(data: unknown, [port]: MessagePort[]) {
          sent++;
          for (const l of listeners) l({ data, ports: [port], waitUntil: () => {} });
        },
      };
      const bridge = { container: { ready: Promise.resolve({ active }) } as unknown as Pick<ServiceWorkerContainer, 'ready'>, env: new ManualEnv() };
      return { bridge, products: connectLiveTable('products', { ...bridge, pageReads }), sent: () => sent };
    };
    return { tab, workerEnv, user: (name: string) => `${name}-${id}`, masterOf };
  }

  /** Read until the tab answers a read of `page` without a message to the worker (its plan is in and its databases open). */
  async function untilPageAnswers(t: { products: ReturnType<typeof connectLiveTable>; sent(): number }, page = 1) {
    for (let i = 0; i < 200; i++) {
      const before = t.sent();
      await t.products.read({ page });
      if (t.sent() === before) return;
      await new Promise((r) => setImmediate(r));
    }
    throw new Error('the page never answered');
  }

  function heard(t: { products: ReturnType<typeof connectLiveTable> }, match: (e: LiveTableEvent) => boolean): Promise<void> {
    return new Promise((resolve) => {
      const off = t.products.subscribe((e) => match(e) && (off(), resolve()));
    });
  }

  it("answers hits in the page exactly as the worker does: read, readOne, list, get, first from IndexedDB then from memory", async () => {
    const w = worker();
    const a = w.tab();
    const direct = w.tab(false);
    await signIn(w.user('alice'), a.bridge);
    const first = await a.products.read({ page: 1 });
    expect(first.source).toBe('master');
    await untilPageAnswers(a);
    await direct.products.readOne('b'); // cached by the worker
    const before = a.sent();
    const fromPage = [await a.products.read({ page: 1 }), await a.products.readOne('b'), await a.products.list({ page: 1, ipp: 50 }), await a.products.get('b')];
    expect(a.sent()).toBe(before);
    const fromWorker = [await direct.products.read({ page: 1 }), await direct.products.readOne('b'), await direct.products.list({ page: 1, ipp: 50 }), await direct.products.get('b')];
    expect(fromPage).toEqual(fromWorker);
    expect(fromPage[0]).toMatchObject({ source: 'cache', stale: false, revalidating: false, pendingIds: [], conflicts: [] });
    expect((fromPage[0] as ReadResult).rows[0]![1].name).toBe(`${w.user('alice')}'s Apple Pie`);
  });

  it('asks for the plan as a tab connects, so that its first read of a cached page can be answered in the page', async () => {
    const w = worker();
    const a = w.tab();
    await signIn(w.user('alice'), a.bridge);
    await a.products.read({ page: 1 });
    const b = w.tab();
    await vi.waitFor(() => expect(b.sent()).toBe(1)); // the plan, asked before any read
    await untilPageAnswers(b);
  });

  it('shows a write made in another tab between two reads, as the worker does, queued and then applied', async () => {
    const w = worker();
    const a = w.tab();
    const b = w.tab();
    const direct = w.tab(false);
    await signIn(w.user('alice'), a.bridge);
    await a.products.read({ page: 1 });
    await untilPageAnswers(a);
    w.workerEnv.online = false; // the write stays queued
    const queued = heard(a, (e) => e.type === 'queued');
    await b.products.patch('a', { price: 99 });
    await queued;
    const pending = await a.products.read({ page: 1 });
    expect(pending).toEqual(await direct.products.read({ page: 1 }));
    expect(pending).toMatchObject({ pendingIds: ['a'], rows: expect.arrayContaining([['a', expect.objectContaining({ price: 99 })]]) });
    expect(await a.products.read({ page: 1 })).toEqual(pending); // again, from memory
    w.workerEnv.online = true;
    const applied = heard(a, (e) => e.type === 'queue' && e.pending === 0);
    await b.products.flush();
    await applied;
    expect(await direct.products.read({ page: 1 })).toMatchObject({ source: 'master' }); // the invalidated page is fetched again
    const after = await a.products.read({ page: 1 });
    expect(after).toEqual(await direct.products.read({ page: 1 }));
    expect(after).toMatchObject({ pendingIds: [], rows: expect.arrayContaining([['a', expect.objectContaining({ price: 99 })]]) });
  });

  it('forgets what it read of one user when another signs in in another tab, and never answers their rows', async () => {
    const w = worker();
    const a = w.tab();
    const b = w.tab();
    await signIn(w.user('alice'), a.bridge);
    await a.products.read({ page: 1 });
    await untilPageAnswers(a);
    const told = new Promise<void>((resolve) => {
      const channel = new BroadcastChannel('vantage-live:events');
      channel.onmessage = ({ data }) => 'session' in data && (channel.close(), resolve());
    });
    await signIn(w.user('bob'), b.bridge);
    await told;
    const read = await a.products.read({ page: 1 });
    expect(read.rows[0]![1].name).toBe(`${w.user('bob')}'s Apple Pie`);
    await signOut({ ...b.bridge, pending: 'keep' });
    await expect(a.products.read({ page: 1 })).rejects.toMatchObject({ code: 'signed_out' });
  });

  it('with pageReads false, sends every read to the worker', async () => {
    const w = worker();
    const direct = w.tab(false);
    await signIn(w.user('alice'), direct.bridge);
    await direct.products.read({ page: 1 });
    const before = direct.sent();
    await direct.products.read({ page: 1 });
    await direct.products.read({ page: 1 });
    expect(direct.sent()).toBe(before + 2);
  });
});
