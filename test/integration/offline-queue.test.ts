import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  IdbCache,
  IdbQueue,
  LiveTable,
  MasterRejectedError,
  MemCache,
  OfflineMissError,
  RestTable,
  type Cache,
  type Id,
  type LiveTableEvent,
  type Row,
} from '../../src/index.js';
import { recordingFetch, TestMaster } from '../support/master.js';

const retryPolicy = { baseMs: 20, capMs: 200 };
const SLOW = { timeout: 15_000, interval: 10 };

let master: TestMaster;
let dbSeq = 0;
const workers: TableWorker[] = [];

beforeEach(async () => {
  master = await TestMaster.start();
  await master.seed(); // a, b, c
});

afterEach(async () => {
  for (const w of workers.splice(0)) await w.kill();
  await master.dispose();
});

const freshDb = (what: string) => `it-${what}-${process.pid}-${++dbSeq}`;

interface TableWorker {
  net: ReturnType<typeof recordingFetch>;
  queue: IdbQueue;
  table: LiveTable;
  /** Everything the LiveTable emitted. */
  events: LiveTableEvent[];
  /** Stop the worker: its table, its queue connection, and the answers it was waiting for. */
  kill(): Promise<void>;
}

/**
 * What a service worker holds for one table: a LiveTable with an IdbQueue
 * (and a cache) in front of a RestTable to the real master. `kill()` plays
 * the worker being stopped: nothing more runs, its database connection is
 * gone, and answers to requests it already sent are never heard.
 */
function startWorker(queueDb: string, cache: Cache = new MemCache()): TableWorker {
  const net = recordingFetch();
  const queue = new IdbQueue(queueDb);
  const table = new LiveTable(new RestTable(master.api, 'products', { fetch: net.fetch }), 'products', cache, { queue, retryPolicy });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  let killed = false;
  const kill = async () => {
    if (killed) return;
    killed = true;
    table.close();
    await queue.close();
    net.kill();
  };
  const worker = { net, queue, table, events, kill };
  workers.push(worker);
  return worker;
}

const ids = (rows: Row[]) => rows.map((r) => r['id']);

/** Ops a previous session left in the queue database, written the way a LiveTable writes them. */
async function leaveInQueue(queueDb: string, n: number): Promise<void> {
  const queue = new IdbQueue(queueDb);
  for (let i = 1; i <= n; i++) {
    const op = { opId: `op-${i}`, table: 'products', kind: 'insert', id: `n${i}`, row: { name: `Nut ${i}`, price: i } } as const;
    await queue.enqueue({ ...op, idempotencyKey: crypto.randomUUID(), enqueuedAt: Date.now() });
  }
  await queue.close();
}

describe('acknowledged writes survive a restart (W1, W6)', () => {
  it('ops acknowledged with wait: "queued" while the master refuses survive a queue restart and apply once, in order', async () => {
    const db = freshDb('restart');
    await master.chaos({ refuseForMs: 60_000 });
    const first = startWorker(db);
    const t = first.table;
    await t.insert('d', { name: 'Donut', price: 3 }, { wait: 'queued', opId: 'op-1' });
    await t.patch('a', { price: 13 }, { wait: 'queued', opId: 'op-2' });
    await t.delete('b', { wait: 'queued', opId: 'op-3' });
    expect(await t.insertReturnId({ name: 'Eclair', price: 4 }, { wait: 'queued', opId: 'op-4' })).toBe('op-4');
    await vi.waitFor(() => expect(first.events.some((e) => e.type === 'retrying')).toBe(true), SLOW);
    await first.kill();
    expect((await master.stats()).writes).toBe(0); // nothing reached the master

    await master.resetChaos();
    const second = startWorker(db);
    expect((await second.table.pending()).map((op) => `${op.opId} ${op.kind}`)).toEqual([
      'op-1 insert',
      'op-2 patch',
      'op-3 delete',
      'op-4 insertReturnId',
    ]);
    void second.table.flush(); // what the worker does when it starts
    const newId = await second.table.waitFor('op-4');
    expect(await second.table.pending()).toEqual([]);

    const rows = await master.rows();
    expect(ids(rows)).toEqual(['a', 'c', 'd', newId]);
    expect(rows[0]).toEqual({ id: 'a', name: 'Apple Pie', price: 13 });
    expect(rows[3]).toEqual({ id: newId, name: 'Eclair', price: 4 });
    expect(await master.stats()).toMatchObject({ writes: 4, replays: 0 });
    expect(second.net.writes().map((r) => `${r.method} ${r.status}`)).toEqual(['POST 201', 'PATCH 200', 'DELETE 204', 'POST 201']);
  });

  it('an op in flight when its worker dies is sent again with the same key after the restart, and applied exactly once', async () => {
    const db = freshDb('in-flight');
    await master.chaos({ latencyMs: 300 });
    const first = startWorker(db);
    await first.table.insert('d', { name: 'Donut', price: 3 }, { wait: 'queued', opId: 'op-d' });
    await vi.waitFor(async () => {
      expect(await first.queue.record('op-d')).toMatchObject({ status: 'in-flight' });
      expect(first.net.writes()).toHaveLength(1);
    }, SLOW);
    await first.kill(); // the request is on its way to the master; its answer will never be heard

    const second = startWorker(db);
    expect(await second.queue.record('op-d')).toMatchObject({ status: 'in-flight', attempts: 0 });
    void second.table.flush();
    expect(await second.table.waitFor('op-d')).toEqual({ id: 'd', name: 'Donut', price: 3 });
    expect(await second.queue.record('op-d')).toMatchObject({ status: 'applied' });

    // Both requests reached the master with the same key: one applied it, the other got the replay.
    expect(second.net.writes().map((r) => r.idempotencyKey)).toEqual(first.net.writes().map((r) => r.idempotencyKey));
    expect(await master.stats()).toMatchObject({ writes: 1, replays: 1 });
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'd']);
  });
});

describe('retries (W3, W4)', () => {
  it.each([
    ['insert', async (t: LiveTable): Promise<Id> => String((await t.insert('d', { name: 'Donut', price: 3 }))['id'])],
    ['insertReturnId', (t: LiveTable): Promise<Id> => t.insertReturnId({ name: 'Donut', price: 3 })],
  ] as const)('an %s the master committed but whose answer was lost is retried and applied once', async (_kind, write) => {
    const w = startWorker(freshDb('drop'));
    await master.chaos({ dropAfterCommit: 1 });
    const id = await write(w.table);
    const rows = await master.rows();
    expect(ids(rows)).toEqual(['a', 'b', 'c', id]);
    expect(rows[3]).toEqual({ id, name: 'Donut', price: 3 });
    expect(await master.stats()).toMatchObject({ writes: 1, replays: 1 });
    const sent = w.net.writes();
    expect(sent.map((r) => r.status)).toEqual([0, 201]);
    expect(sent[1]?.idempotencyKey).toBe(sent[0]?.idempotencyKey);
    const retrying = w.events.filter((e) => e.type === 'retrying');
    expect(retrying).toHaveLength(1);
    expect(retrying[0]).toMatchObject({ error: { code: 'master_unavailable' } });
  });

  it('after 503s with Retry-After it waits at least that long each time, then applies once, in order', async () => {
    const w = startWorker(freshDb('retry-after'));
    await master.chaos({ failNext: 2, failStatus: 503, retryAfterSec: 1 });
    const [d, e] = await Promise.all([w.table.insert('d', { name: 'Donut', price: 3 }), w.table.insert('e', { name: 'Eclair', price: 4 })]);
    expect(d).toEqual({ id: 'd', name: 'Donut', price: 3 });
    expect(e).toEqual({ id: 'e', name: 'Eclair', price: 4 });

    // e may ride in d's batch or follow it alone: either way d heads every request, and each applies once, in order.
    const sent = w.net.writes();
    const label = (r: (typeof sent)[number]) => `${r.status} ${r.idempotencyKey === sent[0]?.idempotencyKey ? 'd' : 'e'}`;
    const requests = sent.filter((r, i) => r.batch === undefined || sent.findIndex((o) => o.batch === r.batch) === i);
    expect(requests.slice(0, 3).map(label)).toEqual(['503 d', '503 d', '201 d']);
    expect(sent.filter((r) => r.status !== 503).map(label)).toEqual(['201 d', '201 e']);
    const retrying = w.events.filter((ev): ev is Extract<LiveTableEvent, { type: 'retrying' }> => ev.type === 'retrying');
    expect(retrying.map((r) => ['id' in r.op ? r.op.id : undefined, r.error.status])).toEqual([
      ['d', 503],
      ['d', 503],
    ]);
    retrying.forEach((r, i) => {
      const failed = requests[i]!;
      const next = requests[i + 1]!;
      expect(r.retryAt - failed.sentAt).toBeGreaterThanOrEqual(1_000); // Retry-After: 1
      expect(next.sentAt).toBeGreaterThanOrEqual(r.retryAt);
    });
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(await master.stats()).toMatchObject({ writes: 2, replays: 0 });
  });
});

describe('dead letters (W4, W5)', () => {
  it('a 409 and a 422 become dead letters with the reason, later ops still apply, and retry / discard work', async () => {
    const w = startWorker(freshDb('dead'));
    const t = w.table;
    expect((await t.read({ page: 1, ipp: 10 })).source).toBe('master');

    // A conflict: the id is taken. The caller hears the master's reason; the cache is left as it was.
    const conflict = await t.insert('a', { name: 'Another Apple', price: 1 }, { opId: 'op-409' }).catch((e: unknown) => e);
    expect(conflict).toBeInstanceOf(MasterRejectedError);
    expect(conflict).toMatchObject({ status: 409, masterCode: 'conflict' });
    const after = await t.read({ page: 1, ipp: 10 });
    expect(after.source).toBe('cache');
    expect(after.rows[0]).toEqual(['a', { id: 'a', name: 'Apple Pie', price: 12 }]);
    expect(after.pendingIds).toEqual([]);

    await t.insert('e', { name: 'Eclair', price: 4 }, { wait: 'queued', opId: 'op-e' });
    await t.patch('b', { price: -1 }, { wait: 'queued', opId: 'op-422' });
    await t.insert('f', { name: 'Fig Roll', price: 6 }, { wait: 'queued', opId: 'op-f' });
    await t.waitFor('op-f');
    await expect(t.waitFor('op-422')).rejects.toMatchObject({ status: 422, masterCode: 'validation' });

    const dead = await t.deadLetters();
    expect(dead.map((op) => [op.opId, op.status, op.lastError?.status, op.lastError?.code])).toEqual([
      ['op-409', 'dead', 409, 'conflict'],
      ['op-422', 'dead', 422, 'validation'],
    ]);
    expect(dead[0]?.lastError?.message).toMatch(/already exists/);
    expect(dead[1]?.lastError?.message).toMatch(/price must be a non-negative number/);
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'e', 'f']);
    expect((await master.call('GET', '/products/b')).body).toEqual({ id: 'b', name: 'Brioche', price: 8 });
    expect(await master.stats()).toMatchObject({ writes: 2 });

    // Fix the conflict on the master, then retry the dead insert; discard the invalid patch.
    expect((await master.call('DELETE', '/products/a')).status).toBe(204);
    await t.retry('op-409');
    expect(await t.waitFor('op-409')).toEqual({ id: 'a', name: 'Another Apple', price: 1 });
    await t.discard('op-422');
    expect(await t.deadLetters()).toEqual([]);
    expect(await t.pending()).toEqual([]);
    await expect(t.waitFor('op-422')).rejects.toMatchObject({ code: 'op_discarded', opId: 'op-422' });

    expect(await master.rows()).toEqual([
      { id: 'b', name: 'Brioche', price: 8 },
      { id: 'c', name: 'Cinnamon Roll', price: 15 },
      { id: 'e', name: 'Eclair', price: 4 },
      { id: 'f', name: 'Fig Roll', price: 6 },
      { id: 'a', name: 'Another Apple', price: 1 },
    ]);
    expect(await master.stats()).toMatchObject({ writes: 4, replays: 0 });
    expect(w.net.writes().filter((r) => r.method === 'PATCH')).toHaveLength(1); // the discarded patch was never sent again
  });
});

describe('one sender per op', () => {
  it('two flushes started at once on one LiveTable send each op once', async () => {
    await master.chaos({ latencyMs: 20 });
    const db = freshDb('two-flushes');
    await leaveInQueue(db, 5);
    const w = startWorker(db);
    await Promise.all([w.table.flush(), w.table.flush()]);
    expect(await w.queue.counts('products')).toEqual({ pending: 0, dead: 0 }); // both resolved once all was sent
    expect(w.net.writes()).toHaveLength(5);
    expect(new Set(w.net.writes().map((r) => r.idempotencyKey)).size).toBe(5);
    expect(await master.stats()).toMatchObject({ writes: 5, replays: 0 });
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('two LiveTables on the same IdbQueue database, flushing at once, send each op once', async () => {
    await master.chaos({ latencyMs: 20 });
    const db = freshDb('two-tables');
    await leaveInQueue(db, 5);
    const one = startWorker(db);
    const two = startWorker(db);
    await Promise.all([one.table.flush(), two.table.flush()]);
    await vi.waitFor(async () => expect(await one.queue.counts('products')).toEqual({ pending: 0, dead: 0 }), SLOW);
    const sent = [...one.net.writes(), ...two.net.writes()];
    expect(sent.map((r) => r.idempotencyKey).sort()).toEqual([...new Set(sent.map((r) => r.idempotencyKey))].sort()); // no op sent twice
    expect(sent).toHaveLength(5);
    expect(await master.stats()).toMatchObject({ writes: 5, replays: 0 });
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'n1', 'n2', 'n3', 'n4', 'n5']);
  });
});

describe('reads while the master is unreachable (R2, R3)', () => {
  it('serves an invalidated page stale from the cache, and fails at once with OfflineMissError for a page never read', async () => {
    const w = startWorker(freshDb('stale'), new IdbCache(freshDb('stale-cache')));
    const t = w.table;
    const first = await t.read({ page: 1, ipp: 10 });
    expect(first).toMatchObject({ source: 'master', stale: false });
    await master.call('PATCH', '/products/a', { price: 99 }); // a change the table is told about, then cannot fetch
    await t.invalidate('event');
    await master.chaos({ refuseForMs: 60_000 });

    const offline = await t.read({ page: 1, ipp: 10 });
    expect(offline).toMatchObject({ source: 'cache', stale: true, fetchedAt: first.fetchedAt });
    expect(offline.rows).toEqual(first.rows);
    expect(offline.rows[0]?.[1]).toMatchObject({ price: 12 });

    const started = Date.now();
    await expect(t.read({ page: 2, ipp: 10 })).rejects.toBeInstanceOf(OfflineMissError);
    await expect(t.readOne('b')).rejects.toMatchObject({ code: 'offline_miss', cacheKey: 'products/id/b' });
    expect(Date.now() - started).toBeLessThan(1_000);

    await master.resetChaos();
    const back = await t.read({ page: 1, ipp: 10 });
    expect(back).toMatchObject({ source: 'master', stale: false });
    expect(back.rows[0]?.[1]).toMatchObject({ price: 99 });
  });

  it('overlays each kind of queued op on a real page while the master refuses connections, and the master ends up so', async () => {
    const w = startWorker(freshDb('overlay'), new IdbCache(freshDb('overlay-cache')));
    const t = w.table;
    expect((await t.read({ page: 1, ipp: 10 })).rows.map(([id]) => id)).toEqual(['a', 'b', 'c']);
    expect((await t.read({ page: 2, ipp: 2 })).rows.map(([id]) => id)).toEqual(['c']);
    expect((await t.readOne('a')).source).toBe('master');
    await master.chaos({ refuseForMs: 60_000 });

    await t.patch('a', { price: 13 }, { wait: 'queued' });
    await t.replace('b', { name: 'Bagel', price: 5 }, { wait: 'queued' });
    await t.delete('c', { wait: 'queued' });
    await t.insert('d', { name: 'Donut', price: 3 }, { wait: 'queued' });
    const tempId = await t.insertReturnId({ name: 'Eclair', price: 4 }, { wait: 'queued' });

    const page = await t.read({ page: 1, ipp: 10 });
    expect(page.source).toBe('cache');
    expect(page.rows).toEqual([
      [tempId, { id: tempId, name: 'Eclair', price: 4 }],
      ['d', { id: 'd', name: 'Donut', price: 3 }],
      ['a', { id: 'a', name: 'Apple Pie', price: 13 }],
      ['b', { id: 'b', name: 'Bagel', price: 5 }],
    ]);
    expect([...page.pendingIds].sort()).toEqual(['a', 'b', 'c', 'd', tempId].sort());
    expect((await t.read({ page: 2, ipp: 2 })).rows).toEqual([]); // c deleted; inserts show on page 1 only
    expect((await t.readOne('a')).rows).toEqual([['a', { id: 'a', name: 'Apple Pie', price: 13 }]]);
    expect(await master.stats()).toMatchObject({ writes: 0 });
    expect(w.net.writes().some((r) => r.status !== undefined && r.status !== 0)).toBe(false); // no answer reached the table

    await master.resetChaos();
    const realId = await t.waitFor(tempId);
    const fresh = await t.read({ page: 1, ipp: 10 });
    expect(fresh).toMatchObject({ source: 'master', pendingIds: [] });
    expect(fresh.rows).toEqual([
      ['a', { id: 'a', name: 'Apple Pie', price: 13 }],
      ['b', { id: 'b', name: 'Bagel', price: 5 }],
      ['d', { id: 'd', name: 'Donut', price: 3 }],
      [realId, { id: realId, name: 'Eclair', price: 4 }],
    ]);
    expect(await master.stats()).toMatchObject({ writes: 5, replays: 0 });
  });
});

describe('a long outage (W2, W6)', () => {
  it('1,000 ops queued while the master is down all apply in order, once, when it is back', async () => {
    const w = startWorker(freshDb('outage'));
    await master.stop();
    const n = 1_000;
    const idOf = (i: number) => `q${String(i).padStart(4, '0')}`;
    for (let i = 0; i < n; i++) {
      await w.table.insert(idOf(i), { name: `Queued ${i}`, price: i % 50 }, { wait: 'queued', opId: `op-${i}` });
    }
    expect((await w.queue.counts('products')).pending).toBe(n);
    expect(w.net.writes().some((r) => r.status !== undefined && r.status !== 0)).toBe(false); // no answer reached the table

    await master.restart(); // a new process: its stats start from zero
    await w.table.waitFor(`op-${n - 1}`);
    expect(await w.queue.counts('products')).toEqual({ pending: 0, dead: 0 });

    const rows = await master.rows();
    expect(ids(rows)).toEqual(['a', 'b', 'c', ...Array.from({ length: n }, (_, i) => idOf(i))]);
    expect(rows[3 + 617]).toEqual({ id: 'q0617', name: 'Queued 617', price: 617 % 50 });
    expect(await master.stats()).toMatchObject({ writes: n, replays: 0 });
    const delivered = w.net.writes().filter((r) => r.status === 201);
    expect(delivered).toHaveLength(n);
    expect(new Set(delivered.map((r) => r.idempotencyKey)).size).toBe(n);
  });
});
