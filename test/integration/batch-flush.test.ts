/**
 * Batched flush (issue 16) against the reference master over loopback: a
 * backlog goes out in `POST /api/:table/_batch` requests, each op still
 * applied once and in order, through lost answers, refusals and conflicts;
 * against a master without batches the flusher goes back to one op a request.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { IdbQueue, LiveTable, MemCache, RestTable, type ConflictPolicy, type LiveTableEvent, type Row } from '../../src/index.js';
import type { NewOp } from '../../src/queue/types.js';
import { MasterClient } from '../../demo-app/server/client.js';
import { recordingFetch, TestMaster } from '../support/master.js';

const retryPolicy = { baseMs: 20, capMs: 200 };
let master: TestMaster | undefined;
let dbSeq = 0;
const closers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const close of closers.splice(0)) await close();
  await master?.dispose();
  master = undefined;
});

const freshDb = (what: string) => `batch-${what}-${process.pid}-${++dbSeq}`;
const ids = (rows: Row[]) => rows.map((r) => r['id']);

type Op = NewOp extends infer T ? (T extends NewOp ? Omit<T, 'table' | 'idempotencyKey' | 'enqueuedAt'> : never) : never;

/** Ops a previous session left in the queue, as a LiveTable writes them. */
async function leave(queueDb: string, ops: Op[]): Promise<void> {
  const queue = new IdbQueue(queueDb);
  for (const op of ops) await queue.enqueue({ ...op, table: 'products', idempotencyKey: `key-${queueDb}-${op.opId}`, enqueuedAt: Date.now() } as NewOp);
  await queue.close();
}

/** A worker's LiveTable over the queue: it flushes what it finds. */
function worker(m: TestMaster, queueDb: string, opts: { onConflict?: ConflictPolicy; maxBatch?: number } = {}) {
  const net = recordingFetch();
  const queue = new IdbQueue(queueDb);
  const table = new LiveTable(new RestTable(m.api, 'products', { fetch: net.fetch }), 'products', new MemCache(), { queue, retryPolicy, ...opts });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  closers.push(async () => {
    table.close();
    await queue.close();
    net.kill();
  });
  return { net, queue, table, events };
}

/** Flush until nothing is pending (dead letters stay), waiting on the queue's own outcomes. */
async function drained(w: ReturnType<typeof worker>): Promise<void> {
  for (;;) {
    await w.table.flush();
    const counts = await w.queue.counts('products');
    const ops = await w.queue.ops('products');
    if (counts.pending === 0 || ops.every((op) => op.status === 'dead' || ops.some((d) => d.status === 'dead' && 'id' in d && 'id' in op && d.id === op.id))) return;
    await new Promise<void>((resolve) => {
      const off = w.table.subscribe((e) => {
        if (e.type === 'applied' || e.type === 'dead' || e.type === 'retrying') {
          off();
          resolve();
        }
      });
    });
  }
}

const qid = (i: number) => `q${String(i).padStart(4, '0')}`;
const insert = (i: number): Op => ({ opId: `op-${i}`, kind: 'insert', id: qid(i), row: { name: `Queued ${i}`, n: i } });

describe('batched flush (issue 16)', () => {
  it('a 1,000-op backlog goes out in batches, each op applied once, in order', async () => {
    master = await TestMaster.start();
    await master.seed(); // a, b, c
    const db = freshDb('backlog');
    // Every 10th op patches the row inserted just before it: a second op on a row ends the batch.
    const ops: Op[] = Array.from({ length: 1_000 }, (_, i) => (i % 10 === 9 ? { opId: `op-${i}`, kind: 'patch', id: qid(i - 1), row: { n: -i } } : insert(i)) as Op);
    await leave(db, ops);
    const w = worker(master, db);
    await w.table.flush();
    expect(await w.queue.counts('products')).toEqual({ pending: 0, dead: 0 });

    const rows = await master.rows();
    expect(ids(rows)).toEqual(['a', 'b', 'c', ...Array.from({ length: 1_000 }, (_, i) => i).filter((i) => i % 10 !== 9).map(qid)]);
    expect(rows.find((r) => r['id'] === 'q0008')).toMatchObject({ name: 'Queued 8', n: -9 });
    expect(rows.find((r) => r['id'] === 'q0010')).toMatchObject({ name: 'Queued 10', n: 10 });
    expect(await master.stats()).toMatchObject({ writes: 1_000, replays: 0 });
    const sent = w.net.writes();
    expect(sent.map((r) => r.idempotencyKey)).toEqual(ops.map((op) => `key-${db}-${op.opId}`));
    expect(sent.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    // Ten ops a batch at most here (the patch ends it), so about 100 requests instead of 1,000.
    expect(w.net.batches.length).toBeLessThanOrEqual(101);
    // Only the last op, a patch of the row just before it, goes alone.
    expect(sent.filter((r) => r.batch === undefined).map((r) => r.idempotencyKey)).toEqual([`key-${db}-op-999`]);
    expect(w.events.filter((e) => e.type === 'applied')).toHaveLength(1_000);
  });

  it('a batch whose answer is lost after commit is sent again with the same keys and replayed, not applied again', async () => {
    master = await TestMaster.start();
    const db = freshDb('lost');
    await leave(db, Array.from({ length: 30 }, (_, i) => insert(i)));
    await master.chaos({ dropAfterCommit: 1 });
    const w = worker(master, db);
    await drained(w);
    expect(await w.queue.counts('products')).toEqual({ pending: 0, dead: 0 });
    expect(ids(await master.rows())).toEqual(Array.from({ length: 30 }, (_, i) => qid(i)));
    expect(await master.stats()).toMatchObject({ writes: 30, replays: 30 });
    expect(w.net.batches.map((b) => `${b.status ?? 0} ${b.ops}`)).toEqual(['0 30', '200 30']);
    expect(w.events.filter((e) => e.type === 'retrying')).toHaveLength(1);
  });

  it('an op the master refuses in the middle becomes a dead letter, the others apply, and later ops on its row wait behind it', async () => {
    master = await TestMaster.start();
    await master.seed(); // a, b, c
    const db = freshDb('refused');
    await leave(db, [
      insert(1),
      { opId: 'op-a', kind: 'insert', id: 'a', row: { name: 'Another a' } }, // a exists: 409
      insert(2),
      { opId: 'op-a2', kind: 'patch', id: 'a', row: { name: 'Patched a' } },
      insert(3),
    ]);
    const w = worker(master, db);
    await drained(w);
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'q0001', 'q0002', 'q0003']);
    expect((await master.rows())[0]).toMatchObject({ name: 'Apple Pie' });
    expect(await w.queue.record('op-a')).toMatchObject({ status: 'dead', deadReason: 'rejected' });
    expect((await w.table.pending()).map((op) => `${op.opId} ${op.blockedBy}`)).toEqual(['op-a2 op-a']);
    // The first batch carried q0001, a and q0002 (the patch of a ends it); a's refusal did not stop q0002.
    expect(w.net.writes().filter((r) => r.batch === 0).map((r) => `${r.path.split('/').pop()} ${r.status}`)).toEqual(['products 201', 'products 409', 'products 201']);
    expect(await master.stats()).toMatchObject({ writes: 3 });
  });

  it.each([
    ['server-wins', 'dead'],
    ['client-wins', 'applied'],
  ] as const)('a conflict inside a batch follows the table policy (%s), as for an op sent alone', async (policy, outcome) => {
    master = await TestMaster.start();
    await master.seed(); // a, b, c
    const a = (await master.call('GET', '/products/a')).body as Row;
    await master.call('PATCH', '/products/a', { price: 99 }); // a moves on past the version the write saw
    const db = freshDb(`conflict-${policy}`);
    await leave(db, [
      insert(1),
      { opId: 'op-a', kind: 'patch', id: 'a', row: { name: 'Mine' }, base: { version: a['_version'] as number, row: a } },
      insert(2),
    ]);
    const w = worker(master, db, { onConflict: policy });
    await drained(w);
    expect(w.net.writes()[1]).toMatchObject({ ifMatch: `"${a['_version']}"`, status: 412, batch: 0 });
    expect(ids(await master.rows())).toEqual(['a', 'b', 'c', 'q0001', 'q0002']);
    const row = (await master.rows())[0];
    if (outcome === 'dead') {
      expect(await w.queue.record('op-a')).toMatchObject({ status: 'dead', deadReason: 'conflict' });
      expect(row).toMatchObject({ name: 'Apple Pie', price: 99 });
      expect(w.events.some((e) => e.type === 'conflict')).toBe(true);
    } else {
      expect(await w.queue.record('op-a')).toMatchObject({ status: 'applied' });
      expect(row).toMatchObject({ name: 'Mine', price: 99 });
    }
  });

  it('an insertReturnId ends its batch, and later ops name the master\'s id', async () => {
    master = await TestMaster.start();
    const db = freshDb('return-id');
    await leave(db, [
      insert(1),
      { opId: 'op-r', kind: 'insertReturnId', row: { name: 'New' } },
      { opId: 'op-p', kind: 'patch', id: 'op-r', row: { name: 'New, patched' } },
      insert(2),
    ]);
    const w = worker(master, db);
    await drained(w);
    const rows = await master.rows();
    expect(rows).toHaveLength(3);
    const newId = await w.table.waitFor('op-r');
    expect(rows[1]).toMatchObject({ id: newId, name: 'New, patched' });
    expect(w.net.batches.map((b) => b.ops)).toEqual([2, 2]);
    expect(w.net.writes()[2]).toMatchObject({ method: 'PATCH', path: `/api/products/${newId}` });
  });

  it('a batch answered 401 pauses the flush with every op still queued; new credentials send it again, each op once', async () => {
    master = await TestMaster.start({ auth: { users: { alice: 'pw-alice' } } });
    const db = freshDb('auth');
    await leave(db, Array.from({ length: 20 }, (_, i) => insert(i)));
    let token: string | undefined;
    const net = recordingFetch();
    const queue = new IdbQueue(db);
    const headers = (): Record<string, string> => (token === undefined ? {} : { authorization: `Bearer ${token}` });
    const table = new LiveTable(new RestTable(master.api, 'products', { fetch: net.fetch, headers }), 'products', new MemCache(), { queue, retryPolicy });
    const events: LiveTableEvent[] = [];
    table.subscribe((e) => events.push(e));
    closers.push(async () => {
      table.close();
      await queue.close();
    });
    await table.flush();
    expect(events.filter((e) => e.type === 'auth').map((e) => (e as { state: string }).state)).toEqual(['required']);
    expect(await queue.counts('products')).toEqual({ pending: 20, dead: 0 });
    expect(net.batches.map((b) => `${b.status} ${b.ops}`)).toEqual(['401 20']);

    token = (await new MasterClient(master.url).login('alice', 'pw-alice')).session.token;
    await table.credentialsChanged();
    expect(await queue.counts('products')).toEqual({ pending: 0, dead: 0 });
    expect(net.batches.map((b) => `${b.status} ${b.ops}`)).toEqual(['401 20', '200 20']);
    const rows = (await new MasterClient(master.url, undefined, token).call('GET', '/api/products?ipp=100')).body.rows as Row[];
    expect(ids(rows)).toEqual(Array.from({ length: 20 }, (_, i) => qid(i)));
  });

  it('against a master without batches it falls back to one op a request, each applied once, in order', async () => {
    master = await TestMaster.start({ batches: false });
    const db = freshDb('fallback');
    await leave(db, Array.from({ length: 40 }, (_, i) => insert(i)));
    const w = worker(master, db);
    await w.table.flush();
    expect(ids(await master.rows())).toEqual(Array.from({ length: 40 }, (_, i) => qid(i)));
    expect(await master.stats()).toMatchObject({ writes: 40, replays: 0 });
    // One batch tried, refused whole with a 405 before anything was applied; then op by op.
    expect(w.net.batches.map((b) => b.status)).toEqual([405]);
    const single = w.net.writes().filter((r) => r.batch === undefined);
    expect(single.map((r) => `${r.method} ${r.status}`)).toEqual(Array.from({ length: 40 }, () => 'POST 201'));
  });

  it('a master that does not advertise batches on its list answers is never sent one', async () => {
    master = await TestMaster.start({ batches: false });
    const db = freshDb('unadvertised');
    await leave(db, Array.from({ length: 5 }, (_, i) => insert(i)));
    const w = worker(master, db);
    await w.table.read({ page: 1 });
    await w.table.flush();
    expect(w.net.batches).toEqual([]);
    expect(await master.stats()).toMatchObject({ writes: 5 });
  });
});
