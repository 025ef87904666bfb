/**
 * A miss answers before its rows are stored (issue 16): the put goes on after
 * the answer, and the generation read before the load still decides whether
 * the rows are fresh. These tests hold the put open between the master's
 * answer and the store, and do there what a worker meets: an invalidation, a
 * read of the same page, a close, a sign-out with wipe, a worker stopped.
 */
import 'fake-indexeddb/auto';
import { describe, expect, it, vi } from 'vitest';
import { Sessions } from '../src/bridge/session.js';
import { IdbCache, LiveTable, MemCache, MemQueue, type Cache, type CachedRows, type CacheLookup } from '../src/index.js';
import { productsMaster, type ObservedTable } from './support/tables.js';

/** A cache whose puts wait until `release()`: the span between a miss's answer and its put, held open. */
class HeldPuts implements Cache {
  readonly kind = 'HeldPuts';
  /** Puts asked for, and puts that reached the inner cache. */
  asked = 0;
  stored = 0;
  private open!: () => void;
  private gate = new Promise<void>((resolve) => (this.open = resolve));

  constructor(readonly inner: Cache) {}

  release(): void {
    this.open();
  }
  get(key: string) {
    return this.inner.get(key);
  }
  lookup(key: string): Promise<CacheLookup> {
    return this.inner.lookup!(key);
  }
  async put(key: string, rows: CachedRows): Promise<void> {
    this.asked++;
    await this.gate;
    await this.inner.put(key, rows);
    this.stored++;
  }
  invalidatePrefix(prefix: string) {
    return this.inner.invalidatePrefix(prefix);
  }
  generation(prefix: string) {
    return this.inner.generation(prefix);
  }
  inspect(prefix?: string) {
    return this.inner.inspect!(prefix);
  }
}

let dbSeq = 0;
const caches: Array<[string, () => Cache]> = [
  ['MemCache', () => new MemCache()],
  ['IdbCache', () => new IdbCache(`miss-put-${process.pid}-${++dbSeq}`)],
];

/** Page 1 read by a table over the same cache that knows nothing of this one (another worker, or the next one). */
const readFromAnotherWorker = (master: ObservedTable, cache: Cache) => new LiveTable(master, 'products', cache, { queue: new MemQueue() }).read({ page: 1 });
const ids = (rows: Array<[string, unknown]>) => rows.map(([id]) => id);
const price = (rows: Array<[string, Record<string, unknown>]>, id: string) => rows.find(([rowId]) => rowId === id)?.[1]['price'];

describe.each(caches)('a miss over %s answers before its put', (_name, makeCache) => {
  function setup(master: ObservedTable = productsMaster(), inner: Cache = makeCache()) {
    const held = new HeldPuts(inner);
    const table = new LiveTable(master, 'products', held, { queue: new MemQueue() });
    return { master, inner, held, table };
  }

  it('answers with the master\'s rows while the put is held; a read of the same page waits for the put and is a hit', async () => {
    const { master, held, table } = setup();
    const first = await table.read({ page: 1 });
    expect(first).toMatchObject({ source: 'master', stale: false, pendingIds: [] });
    expect(ids(first.rows)).toEqual(['a', 'b', 'c']);
    expect(held.stored).toBe(0);

    const again = table.read({ page: 1 });
    held.release();
    expect(await again).toMatchObject({ source: 'cache', stale: false, rows: first.rows });
    expect(master.calls).toEqual(['list 1/50']);
    expect(held.stored).toBe(1);
  });

  it('an invalidation between the master\'s answer and the put wins: the put lands stale and the next read has the new rows', async () => {
    const { master, inner, held, table } = setup();
    const first = await table.read({ page: 1 });
    expect(price(first.rows, 'a')).toBe(12);

    await master.table.patch('a', { price: 99 });
    await table.ingest({ kind: 'updated', id: 'a' });
    held.release();
    await table.idle();
    expect(held.stored).toBe(1);
    expect((await inner.get('products/page_1'))?.stale).toBe(true);

    const next = await table.read({ page: 1 });
    expect(next.source).toBe('master');
    expect(price(next.rows, 'a')).toBe(99);
  });

  it('a read after the invalidation, before the put landed, never sees the old rows: not from this table, not from another over the same cache', async () => {
    const { master, inner, held, table } = setup();
    await table.read({ page: 1 });
    await master.table.patch('a', { price: 99 });
    await table.invalidate('event');

    // Another worker over the same cache knows nothing of the put under way.
    const other = new LiveTable(master, 'products', inner, { queue: new MemQueue() });
    const fromOther = await other.read({ page: 1 });
    expect(fromOther.source).toBe('master');
    expect(price(fromOther.rows, 'a')).toBe(99);

    const reading = table.read({ page: 1 });
    held.release();
    const after = await reading;
    expect(price(after.rows, 'a')).toBe(99);
    await Promise.all([table.idle(), other.idle()]);
    expect(price((await table.read({ page: 1 })).rows, 'a')).toBe(99);
    expect(price((await other.read({ page: 1 })).rows, 'a')).toBe(99);
  });

  it('a put already under way when the table closes lands before idle() resolves, with the answered rows', async () => {
    const { master, inner, held, table } = setup();
    const answered = await table.read({ page: 1 });
    await vi.waitFor(() => expect(held.asked).toBe(1));
    table.close();
    const idle = table.idle();
    held.release();
    await idle;
    expect(held.stored).toBe(1);
    expect(await readFromAnotherWorker(master, inner)).toMatchObject({ source: 'cache', stale: false, rows: answered.rows });
  });

  it('a worker stopped after the answer, before the put: the next worker\'s read is a miss again, with the same rows', async () => {
    const { master, inner, held, table } = setup();
    const answered = await table.read({ page: 1 });
    table.close(); // the worker is gone; its held put never lands
    expect(held.stored).toBe(0);
    const read = await readFromAnotherWorker(master, inner);
    expect(read).toMatchObject({ source: 'master', stale: false, rows: answered.rows });
    expect(master.calls).toEqual(['list 1/50', 'list 1/50']);
  });

  it('cacheEntries, asked before the put landed, lists the rows already answered', async () => {
    const { held, table } = setup();
    await table.read({ page: 1 });
    const entries = table.cacheEntries();
    held.release();
    expect((await entries).map((e) => [e.key, e.rowCount, e.stale])).toEqual([['products/page_1', 3, false]]);
  });
});

it('sign-out with wipe waits for a put under way: the user\'s cache database is gone afterwards, not made again by a late put', async () => {
  const master = productsMaster();
  let held: HeldPuts | undefined;
  const sessions = new Sessions((scope) => {
    held = new HeldPuts(scope.cache);
    return { products: new LiveTable(master, 'products', held, { queue: scope.queue }) };
  }, () => {});
  const user = `wiped-${process.pid}-${++dbSeq}`;
  await sessions.signIn(user);
  expect((await sessions.current()!.products!.read({ page: 1 })).source).toBe('master');
  const out = sessions.signOut({ pending: 'discard', wipe: true });
  held!.release();
  await out;
  const names = (await indexedDB.databases()).map((d) => d.name);
  expect(names.filter((name) => name?.includes(user))).toEqual([]);
});

describe('the in-doubt check of a miss', () => {
  it('reads the queue once for the overlay and nothing more while no insertReturnId is pending', async () => {
    const master = productsMaster();
    const queue = new MemQueue();
    let reads = 0;
    const ops = queue.ops.bind(queue);
    queue.ops = (table?: string) => {
      reads++;
      return ops(table);
    };
    const table = new LiveTable(master, 'products', new MemCache(), { queue, masterIpp: 1 });
    for (const page of [1, 2, 3]) expect((await table.read({ page })).source).toBe('master');
    expect(reads).toBe(1);
    await table.patch('a', { price: 20 });
    expect((await table.read({ page: 1 })).rows).toEqual([['a', { id: 'a', name: 'Apple Pie', price: 20 }]]);
  });

  it('an insertReturnId the master applied during the load, its answer not in yet: the load starts again once it is settled, and the row shows once', async () => {
    const master = productsMaster();
    const queue = new MemQueue();
    const table = new LiveTable(master, 'products', new MemCache(), { queue });
    // The queue read that looks for ops in doubt after the load.
    let checked!: () => void;
    const isChecked = new Promise<void>((resolve) => (checked = resolve));
    let loaded = false;
    const ops = queue.ops.bind(queue);
    queue.ops = (name?: string) => {
      if (loaded) checked();
      return ops(name);
    };

    // The list waits to start until the insert is committed on the master and its answer held back.
    const list = master.table.list.bind(master.table);
    let listing!: () => void;
    let letList!: () => void;
    const listStarted = new Promise<void>((resolve) => (listing = resolve));
    const listMay = new Promise<void>((resolve) => (letList = resolve));
    let lists = 0;
    master.table.list = async (req) => {
      if (++lists > 1) return list(req);
      listing();
      await listMay;
      const rows = await list(req);
      loaded = true;
      return rows;
    };
    const insert = master.table.insertReturnId.bind(master.table);
    let committed!: () => void;
    let answer!: () => void;
    const isCommitted = new Promise<void>((resolve) => (committed = resolve));
    const answerMay = new Promise<void>((resolve) => (answer = resolve));
    master.table.insertReturnId = async (row, opts) => {
      const id = await insert(row, opts);
      committed();
      await answerMay;
      return id;
    };

    const reading = table.read({ page: 1 });
    await listStarted;
    const temporaryId = await table.insertReturnId({ name: 'Donut', price: 3 }, { wait: 'queued' });
    await isCommitted;
    letList(); // the master's rows now hold the new row, whose op is still in flight
    await isChecked;
    answer();
    const read = await reading;
    const newId = (await table.waitFor(temporaryId)) as string;
    expect(lists).toBe(2);
    expect(read.rows.filter(([, row]) => row['name'] === 'Donut').map(([id]) => id)).toEqual([newId]);
    expect(read.pendingIds).toEqual([]);
  });
});

