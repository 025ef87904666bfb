import 'fake-indexeddb/auto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ConflictError, IdbCache, IdbQueue, LiveTable, MemCache, mergeFields, RestTable, type LiveTableEvent, type LiveTableOptions, type Row } from '../../src/index.js';
import { recordingFetch, TestMaster } from '../support/master.js';

const retryPolicy = { baseMs: 20, capMs: 200 };
const SLOW = { timeout: 10_000, interval: 10 };

let master: TestMaster;
let dbSeq = 0;
const tables: LiveTable[] = [];

beforeEach(async () => {
  master = await TestMaster.start();
  await master.seed(); // a: Apple Pie 12, b: Brioche 8, c: Cinnamon Roll 15
});

afterEach(async () => {
  for (const t of tables.splice(0)) t.close();
  await master.dispose();
});

/** A LiveTable over the real master with a durable queue, and everything it emitted and sent. */
function open(opts: LiveTableOptions = {}) {
  const net = recordingFetch();
  const queue = new IdbQueue(`conflicts-${process.pid}-${++dbSeq}`);
  const table = new LiveTable(new RestTable(master.api, 'products', { fetch: net.fetch }), 'products', new MemCache(), { queue, retryPolicy, ...opts });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  tables.push(table);
  return { table, net, events, queue };
}

const rowOf = async (id: string): Promise<Row | undefined> => (await master.rows()).find((r) => r.id === id);

/** Someone else changes a row on the master, behind the table's (fresh) cache. */
async function changeElsewhere(id: string, patch: Row): Promise<number> {
  const res = await master.call('PATCH', `/products/${id}`, patch);
  expect(res.status).toBe(200);
  return res.body._version as number;
}

describe('versions on the wire', () => {
  it('a write made against a cached row sends its version as If-Match; one with no known version sends none and overwrites as before', async () => {
    const { table, net } = open();
    const read = await table.read();
    const a = read.rows.find(([id]) => id === 'a')![1];
    expect(typeof a._version).toBe('number');
    await table.patch('a', { price: 13 });
    expect(net.writes()[0]!.ifMatch).toBe(`"${a._version}"`);

    // Nothing cached for this view: no version known, the write is last-writer-wins as before versions.
    const blind = open();
    await changeElsewhere('b', { name: 'Brioche au beurre' });
    await blind.table.patch('b', { price: 9 });
    expect(blind.net.writes()[0]!.ifMatch).toBeUndefined();
    expect(await rowOf('b')).toEqual({ id: 'b', name: 'Brioche au beurre', price: 9 });
  });

  it('finds the version in any fresh page of an IndexedDB cache, and none once a change made the pages stale', async () => {
    const net = recordingFetch();
    const table = new LiveTable(new RestTable(master.api, 'products', { fetch: net.fetch }), 'products', new IdbCache(`conflicts-cache-${process.pid}-${++dbSeq}`), {
      queue: new IdbQueue(`conflicts-${process.pid}-${++dbSeq}`), retryPolicy, masterIpp: 2,
    });
    tables.push(table);
    const c = (await table.read({ page: 2 })).rows.find(([id]) => id === 'c')![1];
    await table.patch('c', { price: 16 });
    expect(net.writes()[0]!.ifMatch).toBe(`"${c._version}"`);
    await table.patch('c', { price: 17 }); // the first write made page 2 stale: sent unchecked, after it
    expect(net.writes()[1]!.ifMatch).toBeUndefined();
  });

  it('a write queued behind another to the same row is checked against the version that write got, not a stale one', async () => {
    const { table, net } = open();
    await table.read();
    // The first write meets a 503 first, so the second is queued while the first still waits.
    await master.chaos({ failNext: 1, failOnlyWrites: true });
    await table.patch('a', { price: 20 }, { wait: 'queued', opId: 'first' });
    await table.patch('a', { name: 'Apple Tart' });
    const first = (await table.waitFor('first')) as Row;
    const [failed, one, two] = net.writes();
    expect([failed!.status, one!.ifMatch]).toEqual([503, failed!.ifMatch]);
    expect(two!.ifMatch).toBe(`"${first._version}"`);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Tart', price: 20 });
  });

  it('a table with versions: false never sends If-Match', async () => {
    const { table, net } = open({ versions: false });
    await table.read();
    await changeElsewhere('a', { price: 30 });
    await table.patch('a', { name: 'Mine' });
    expect(net.writes()[0]!.ifMatch).toBeUndefined();
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Mine', price: 30 });
  });
});

describe('server-wins (the default)', () => {
  it('a stale patch gets 412 and becomes a dead letter of reason "conflict" holding both versions; the read shows the master row flagged; every listener hears it', async () => {
    const { table, events, net } = open();
    await table.read();
    const theirsVersion = await changeElsewhere('a', { name: 'Apple Crumble' });
    const write = table.patch('a', { price: 99 });
    await expect(write).rejects.toBeInstanceOf(ConflictError);
    await expect(write).rejects.toMatchObject({ code: 'conflict', theirs: { id: 'a', name: 'Apple Crumble', price: 12, _version: theirsVersion } });
    expect(net.writes().map((r) => r.status)).toEqual([412]);

    const [dead] = await table.deadLetters();
    expect(dead).toMatchObject({ kind: 'patch', id: 'a', row: { price: 99 }, deadReason: 'conflict', lastError: { code: 'conflict', status: 412 } });
    expect(dead!.lastError!.theirs).toEqual({ id: 'a', name: 'Apple Crumble', price: 12, _version: theirsVersion });
    expect(events).toContainEqual(expect.objectContaining({ type: 'conflict', theirs: expect.objectContaining({ name: 'Apple Crumble' }) }));
    expect(events).toContainEqual(expect.objectContaining({ type: 'dead', reason: 'conflict' }));

    const read = await table.read();
    expect(read.rows.find(([id]) => id === 'a')![1]).toEqual({ id: 'a', name: 'Apple Crumble', price: 12 });
    expect(read.conflicts).toEqual([{ id: 'a', opId: dead!.opId }]);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 12 });
  });

  it('retry keeps mine over the version the conflict met; discard keeps theirs', async () => {
    const { table } = open();
    await table.read();
    await changeElsewhere('a', { name: 'Apple Crumble' });
    await changeElsewhere('b', { name: 'Brioche au beurre' });
    await expect(table.patch('a', { price: 99 })).rejects.toBeInstanceOf(ConflictError);
    await expect(table.patch('b', { price: 1 })).rejects.toBeInstanceOf(ConflictError);
    const [onA, onB] = await table.deadLetters();

    await table.retry(onA!.opId);
    await expect(table.waitFor(onA!.opId)).resolves.toMatchObject({ id: 'a', price: 99 });
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 99 });

    await table.discard(onB!.opId);
    expect(await rowOf('b')).toEqual({ id: 'b', name: 'Brioche au beurre', price: 8 });
    expect(await table.deadLetters()).toEqual([]);
    expect((await table.read()).conflicts).toEqual([]);
  });

  it('resolve(opId, row) sends the merged row once, against the master version', async () => {
    const { table, net } = open();
    await table.read();
    const theirs = await changeElsewhere('a', { name: 'Apple Crumble' });
    await expect(table.patch('a', { price: 99 })).rejects.toBeInstanceOf(ConflictError);
    const [dead] = await table.deadLetters();
    await table.resolve(dead!.opId, { name: 'Apple Crumble', price: 50 });
    await expect(table.waitFor(dead!.opId)).resolves.toMatchObject({ id: 'a', name: 'Apple Crumble', price: 50 });
    const put = net.writes().at(-1)!;
    expect(put).toMatchObject({ method: 'PUT', ifMatch: `"${theirs}"`, status: 200 });
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 50 });
  });

  it('a conflict never blocks later writes to other rows; a later write to its own row waits behind it', async () => {
    const { table, net } = open();
    await table.read();
    await changeElsewhere('a', { name: 'Apple Crumble' });
    const conflicted = table.patch('a', { price: 99 });
    conflicted.catch(() => {});
    await table.patch('a', { price: 98 }, { wait: 'queued' });
    await table.patch('b', { price: 1 });
    await table.delete('c');
    await expect(conflicted).rejects.toBeInstanceOf(ConflictError);
    expect(await master.rows()).toEqual([
      { id: 'a', name: 'Apple Crumble', price: 12 },
      { id: 'b', name: 'Brioche', price: 1 },
    ]);
    const pending = await table.pending();
    expect(pending).toHaveLength(1);
    expect(pending[0]).toMatchObject({ id: 'a', row: { price: 98 }, blockedBy: (await table.deadLetters())[0]!.opId });
    expect(net.writes().filter((r) => r.path.endsWith('/a'))).toHaveLength(1);
  });
});

describe('client-wins', () => {
  it('a stale patch gets 412, is sent once more without the precondition, and wins', async () => {
    const { table, net } = open({ onConflict: 'client-wins' });
    await table.read();
    await changeElsewhere('a', { name: 'Apple Crumble', price: 1 });
    await expect(table.patch('a', { price: 99 })).resolves.toMatchObject({ id: 'a', name: 'Apple Crumble', price: 99 });
    expect(net.writes().map((r) => [r.method, r.status, r.ifMatch === undefined])).toEqual([
      ['PATCH', 412, false],
      ['PATCH', 200, true],
    ]);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 99 });
    expect(await table.deadLetters()).toEqual([]);
  });
});

describe('a merge function', () => {
  it('gets base, mine and theirs, runs once, and its row is applied once against the master version', async () => {
    const merge = vi.fn(mergeFields());
    const { table, net } = open({ onConflict: merge });
    await table.read();
    const theirs = await changeElsewhere('a', { name: 'Apple Crumble' });
    await expect(table.patch('a', { price: 99 })).resolves.toMatchObject({ id: 'a', name: 'Apple Crumble', price: 99 });
    expect(merge).toHaveBeenCalledTimes(1);
    const [base, mine, seen] = merge.mock.calls[0]!;
    expect(base).toEqual({ id: 'a', name: 'Apple Pie', price: 12 });
    expect(mine).toEqual({ id: 'a', name: 'Apple Pie', price: 99 });
    expect(seen).toEqual({ id: 'a', name: 'Apple Crumble', price: 12, _version: theirs });
    expect(net.writes().map((r) => [r.method, r.status])).toEqual([
      ['PATCH', 412],
      ['PUT', 200],
    ]);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 99 });
  });

  it("'server' keeps the master row without sending anything; 'client' sends mine unchecked", async () => {
    const server = open({ onConflict: () => 'server' });
    await server.table.read();
    await changeElsewhere('a', { name: 'Apple Crumble' });
    await expect(server.table.patch('a', { price: 99 })).resolves.toMatchObject({ name: 'Apple Crumble', price: 12 });
    expect(server.net.writes()).toHaveLength(1);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 12 });

    const client = open({ onConflict: () => 'client' });
    await client.table.read();
    await changeElsewhere('b', { name: 'Brioche au beurre' });
    await client.table.patch('b', { price: 1 });
    expect(client.net.writes().map((r) => r.ifMatch === undefined)).toEqual([false, true]);
    expect(await rowOf('b')).toEqual({ id: 'b', name: 'Brioche au beurre', price: 1 });
  });

  it('a merged write whose answer was lost is applied once when the op is sent again', async () => {
    const merge = vi.fn(mergeFields());
    const { table, net } = open({ onConflict: merge });
    await table.read();
    await changeElsewhere('a', { name: 'Apple Crumble' });
    // The merged PUT commits, but its answer is lost; the op goes again from the start.
    await master.chaos({ dropAfterCommit: 1 });
    await table.patch('a', { price: 99 });
    await vi.waitFor(async () => expect(await table.pending()).toEqual([]), SLOW);
    expect(await rowOf('a')).toEqual({ id: 'a', name: 'Apple Crumble', price: 99 });
    const puts = net.writes().filter((r) => r.method === 'PUT');
    expect(new Set(puts.map((r) => r.idempotencyKey)).size).toBe(1);
  });
});
