import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { IdbQueue } from '../src/queue/idb-queue.js';
import { MemQueue, type NewOp, type WriteQueue } from '../src/index.js';
import { APPLIED_MEMORY } from '../src/queue/types.js';

let dbCount = 0;
const backends: Array<[string, () => WriteQueue]> = [
  ['MemQueue', () => new MemQueue()],
  ['IdbQueue', () => new IdbQueue(`queue-test-${++dbCount}`)],
];

const op = (opId: string, table = 't', extra: Partial<NewOp> = {}): NewOp => ({
  opId, table, kind: 'insert', id: opId, row: { n: opId }, idempotencyKey: `key-${opId}`, enqueuedAt: 1, ...extra,
});
const err = { code: 'x', message: 'boom', status: 503 };

describe.each(backends)('the WriteQueue contract: %s', (_name, make) => {
  it('queues ops in order and queues a repeated opId once', async () => {
    const q = make();
    expect((await q.enqueue(op('1'))).created).toBe(true);
    await q.enqueue(op('2'));
    const again = await q.enqueue(op('1', 't', { row: { other: true } }));
    expect(again.created).toBe(false);
    expect(again.record).toMatchObject({ opId: '1', row: { n: '1' }, status: 'queued', attempts: 0 });
    expect((await q.ops('t')).map((o) => o.opId)).toEqual(['1', '2']);
  });

  it('takes the head of a table, marking it in-flight, and keeps tables apart', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.enqueue(op('x', 'other'));
    await q.enqueue(op('2'));
    const taken = await q.take('t', 10);
    expect(taken).toMatchObject({ op: { opId: '1', status: 'in-flight', idempotencyKey: 'key-1' } });
    expect((await q.record('1'))?.status).toBe('in-flight');
    expect(await q.take('other', 10)).toMatchObject({ op: { opId: 'x' } });
    expect(await q.take('none', 10)).toBeUndefined();
  });

  it('offers an in-flight head again: an op left in-flight by a crash is retried with its key', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.take('t', 10);
    expect(await q.take('t', 10)).toMatchObject({ op: { opId: '1', idempotencyKey: 'key-1' } });
  });

  it('holds the whole table back while its head waits for a retry (order, W2)', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.enqueue(op('2'));
    await q.take('t', 10);
    await q.retryLater('1', err, 500);
    expect(await q.take('t', 10)).toEqual({ retryAt: 500 });
    expect(await q.take('t', 500)).toMatchObject({ op: { opId: '1', attempts: 1, lastError: err } });
  });

  it('skips dead letters, which keep the reason, and can revive or discard them', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.enqueue(op('2'));
    await q.take('t', 10);
    await q.kill('1', { code: 'validation', message: 'bad price', status: 422 }, 10);
    expect(await q.take('t', 10)).toMatchObject({ op: { opId: '2' } });
    expect(await q.counts('t')).toEqual({ pending: 1, dead: 1 });
    expect((await q.record('1'))).toMatchObject({ status: 'dead', lastError: { status: 422, message: 'bad price' } });
    await q.applied('2', { id: '2' }, 20);
    await q.revive('1', 30);
    expect(await q.take('t', 30)).toMatchObject({ op: { opId: '1', status: 'in-flight' } });
    await q.kill('1', err, 30);
    expect((await q.discard('1', 40)).opId).toBe('1');
    expect(await q.ops()).toEqual([]);
    expect(await q.record('1')).toMatchObject({ status: 'discarded' });
  });

  it('refuses to discard an op that is being sent', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.take('t', 10);
    await expect(q.discard('1', 10)).rejects.toMatchObject({ code: 'in_flight' });
    await expect(q.discard('nope', 10)).rejects.toMatchObject({ code: 'unknown_op' });
  });

  it('removes an applied op but remembers its reply, and a repeated opId stays applied', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.take('t', 10);
    await q.applied('1', { id: '1', n: 1 }, 20);
    expect(await q.ops('t')).toEqual([]);
    expect(await q.record('1')).toMatchObject({ status: 'applied', result: { id: '1', n: 1 } });
    expect(await q.enqueue(op('1'))).toMatchObject({ created: false, record: { status: 'applied' } });
    expect(await q.take('t', 30)).toBeUndefined();
  });

  it('holds later ops on a dead letter\'s row back (blocked), and sends the other rows\' ops', async () => {
    const q = make();
    await q.enqueue(op('1', 't', { kind: 'insert', id: 'a' }));
    await q.enqueue(op('2', 't', { kind: 'patch', id: 'a' }));
    await q.enqueue(op('3', 't', { kind: 'patch', id: 'b' }));
    await q.take('t', 10);
    await q.kill('1', err, 10);
    expect(await q.take('t', 10)).toMatchObject({ op: { opId: '3' } });
    await q.applied('3', null, 11);
    expect(await q.take('t', 12)).toBeUndefined();
    expect(await q.counts('t')).toEqual({ pending: 1, dead: 1 });
  });

  it('revives a dead letter at the end of the queue with the ops blocked behind it, and counts newer writes applied to its row', async () => {
    const q = make();
    await q.enqueue(op('1', 't', { kind: 'patch', id: 'a' }));
    await q.enqueue(op('2', 't', { kind: 'patch', id: 'a' }));
    await q.enqueue(op('3', 't', { kind: 'patch', id: 'b' }));
    await q.take('t', 10);
    await q.kill('1', err, 10);
    await q.take('t', 20);
    await q.applied('3', null, 20);
    await q.enqueue(op('4', 't', { kind: 'deleteAll' }));
    await q.take('t', 30);
    await q.applied('4', null, 30); // a deleteAll touched row a after op 1 died
    await q.enqueue(op('5', 't', { kind: 'patch', id: 'c' }));
    const { revived, overtaken } = await q.revive('1', 40);
    expect([revived, overtaken]).toEqual([true, 1]);
    expect((await q.ops('t')).map((o) => o.opId)).toEqual(['5', '1', '2']);
    expect(await q.revive('1', 41)).toMatchObject({ revived: false, op: { status: 'queued' } });
  });

  it('rewrites the later ops that name a temporary id, in the step that records the insert applied', async () => {
    const q = make();
    await q.enqueue(op('tmp', 't', { kind: 'insertReturnId', row: { n: 1 } }));
    await q.enqueue(op('2', 't', { kind: 'patch', id: 'tmp' }));
    await q.enqueue(op('3', 'other', { kind: 'patch', id: 'tmp' }));
    await q.take('t', 10);
    await q.applied('tmp', 'real-1', 10, { from: 'tmp', to: 'real-1' });
    expect(await q.take('t', 11)).toMatchObject({ op: { opId: '2', id: 'real-1' } });
    expect(await q.take('other', 11)).toMatchObject({ op: { opId: '3', id: 'tmp' } });
  });

  it('remembers a discarded op: discarding again is done, and its opId is never queued again', async () => {
    const q = make();
    await q.enqueue(op('1'));
    await q.discard('1', 10);
    expect(await q.discard('1', 11)).toMatchObject({ status: 'discarded', opId: '1' });
    expect(await q.enqueue(op('1'))).toMatchObject({ created: false, record: { status: 'discarded' } });
    expect(await q.ops('t')).toEqual([]);
  });

  it('records when an op was first sent, and keeps it across attempts', async () => {
    const q = make();
    await q.enqueue(op('1'));
    expect(await q.take('t', 10)).toMatchObject({ op: { firstSentAt: 10 } });
    await q.retryLater('1', err, 20, true);
    expect(await q.take('t', 20)).toMatchObject({ op: { firstSentAt: 10, attempts: 1, answeredFailures: 1 } });
  });

  it('takes a batch from past more dead letters than one read holds, in order (W2)', async () => {
    const q = make();
    for (let i = 0; i < 30; i++) await q.enqueue(op(`dead-${i}`));
    for (let i = 0; i < 30; i++) {
      await q.take('t', 1);
      await q.kill(`dead-${i}`, err, 1);
    }
    for (const id of ['a', 'b', 'c', 'd']) await q.enqueue(op(id));
    const batch = await q.take('t', 2, 3);
    expect(batch && 'ops' in batch && batch.ops?.map((o) => [o.opId, o.status])).toEqual([['a', 'in-flight'], ['b', 'in-flight'], ['c', 'in-flight']]);
    await q.appliedMany(['a', 'b', 'c'].map((opId) => ({ opId, result: null })), 3);
    expect(await q.take('t', 3, 3)).toMatchObject({ op: { opId: 'd' } });
  });

  it('forgets applied ops older than the window, and the oldest past the count', async () => {
    const q = make();
    await q.enqueue(op('old'));
    await q.take('t', 0);
    await q.applied('old', 'r', 0);
    await q.enqueue(op('young'));
    await q.take('t', 1);
    await q.applied('young', 'r', 1);
    await q.enqueue(op('now'));
    await q.take('t', APPLIED_MEMORY.ms + 1);
    await q.applied('now', 'r', APPLIED_MEMORY.ms + 1);
    expect([await q.record('old'), (await q.record('young'))?.status, (await q.record('now'))?.status]).toEqual([undefined, 'applied', 'applied']);
    const ids = Array.from({ length: APPLIED_MEMORY.count }, (_, i) => `n${i}`);
    await Promise.all(ids.map((id) => q.enqueue(op(id))));
    for (let i = 0; i < ids.length; i += 500) {
      await q.take('t', APPLIED_MEMORY.ms + 2, 500);
      await q.appliedMany(ids.slice(i, i + 500).map((opId) => ({ opId, result: null })), APPLIED_MEMORY.ms + 2);
    }
    expect([await q.record('young'), await q.record('now'), (await q.record('n0'))?.status]).toEqual([undefined, undefined, 'applied']);
  }, 60_000);

  it('settles taken ops by the seqs they were taken with, never touching another table\'s op between them', async () => {
    const q = make();
    for (const [id, table] of [['1', 't'], ['x', 'other'], ['2', 't'], ['3', 't'], ['4', 't']]) await q.enqueue(op(id!, table));
    const batch = await q.take('t', 1, 4);
    const ops = batch && 'ops' in batch ? batch.ops! : [];
    expect(ops.map((o) => o.opId)).toEqual(['1', '2', '3', '4']);
    // A seq that names another op is not trusted: the op is found by its opId.
    await q.appliedMany(ops.map((o) => ({ opId: o.opId, seq: o.opId === '4' ? ops[0]!.seq : o.seq, result: o.opId })), 2);
    expect((await q.ops()).map((o) => o.opId)).toEqual(['x']);
    expect(await q.counts('t')).toEqual({ pending: 0, dead: 0 });
    expect(await q.counts('other')).toEqual({ pending: 1, dead: 0 });
    for (const id of ['1', '2', '3', '4']) expect(await q.record(id)).toMatchObject({ status: 'applied', result: id });
  });

  it('settles a batch as applied in one step: each reply remembered, counts exact, an unknown op changes nothing', async () => {
    const q = make();
    for (const id of ['1', '2', '3']) await q.enqueue(op(id));
    await q.take('t', 1, 3);
    await expect(q.appliedMany([{ opId: '1', result: 'r1' }, { opId: 'nope', result: null }], 2)).rejects.toMatchObject({ code: 'unknown_op' });
    expect((await q.ops('t')).map((o) => o.opId)).toEqual(['1', '2', '3']);
    await q.appliedMany(['1', '2', '3'].map((opId) => ({ opId, result: `r${opId}` })), 2);
    expect(await q.ops('t')).toEqual([]);
    expect(await q.counts('t')).toEqual({ pending: 0, dead: 0 });
    for (const id of ['1', '2', '3']) expect(await q.record(id)).toMatchObject({ status: 'applied', result: `r${id}`, appliedAt: 2 });
  });
});

describe('IdbQueue durability', () => {
  it('keeps acknowledged ops, in-flight ones included, across a restart on the same database', async () => {
    const first = new IdbQueue('queue-restart');
    await first.enqueue(op('1'));
    await first.enqueue(op('2'));
    await first.take('t', 10);
    await first.close();
    const second = new IdbQueue('queue-restart');
    expect((await second.ops('t')).map((o) => [o.opId, o.status])).toEqual([['1', 'in-flight'], ['2', 'queued']]);
    expect(await second.take('t', 10)).toMatchObject({ op: { opId: '1', idempotencyKey: 'key-1' } });
  });
});

describe('IdbQueue take from the head it found', () => {
  it('still finds new ops, a revived op, and after the database is deleted and made again (seqs start at 1) its ops', async () => {
    const q = new IdbQueue('queue-head');
    for (const id of ['1', '2', '3']) await q.enqueue(op(id));
    await q.take('t', 1, 2);
    await q.appliedMany(['1', '2'].map((opId) => ({ opId, result: null })), 1);
    expect(await q.take('t', 1)).toMatchObject({ op: { opId: '3' } });
    await q.kill('3', err, 1);
    await q.enqueue(op('4'));
    expect(await q.take('t', 1)).toMatchObject({ op: { opId: '4' } });
    await q.applied('4', null, 1);
    await q.revive('3', 2);
    expect(await q.take('t', 2)).toMatchObject({ op: { opId: '3' } });
    await q.close();
    await new Promise((resolve, reject) => Object.assign(indexedDB.deleteDatabase('queue-head'), { onsuccess: resolve, onerror: reject }));
    await q.enqueue(op('new'));
    expect(await q.take('t', 3)).toMatchObject({ op: { opId: 'new', seq: 1 } });
  });
});

describe('IdbQueue group commit', () => {
  // Every transaction the queue opens, with how it ended, in order.
  function watchTransactions() {
    const log: string[] = [];
    const transaction = IDBDatabase.prototype.transaction;
    IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
      const tx = transaction.apply(this, args);
      const durability = (args[2] as { durability?: string } | undefined)?.durability;
      if (tx.mode === 'readwrite') tx.addEventListener('complete', () => log.push(`commit ${durability}`));
      return tx;
    } as IDBDatabase['transaction'];
    return { log, restore: () => void (IDBDatabase.prototype.transaction = transaction) };
  }

  it('queues concurrent ops in one strict transaction, in call order, and acks each after it commits (W1)', async () => {
    const q = new IdbQueue('queue-group');
    await q.enqueue(op('0'));
    const watch = watchTransactions();
    try {
      const ids = Array.from({ length: 20 }, (_, i) => String(i + 1));
      const acks = [...ids, '5', '0'].map((id) => q.enqueue(op(id)).then((r) => (watch.log.push(`ack ${id}`), r)));
      const results = await Promise.all(acks);
      expect(results.map((r) => r.created)).toEqual([...ids.map(() => true), false, false]);
      // The first call starts at once, alone; the 21 made meanwhile wait for it and go together.
      expect(watch.log).toEqual(['commit strict', 'ack 1', 'commit strict', ...[...ids.slice(1), '5', '0'].map((id) => `ack ${id}`)]);
      expect((await q.ops('t')).map((o) => o.opId)).toEqual(['0', ...ids]);
      expect(await q.counts('t')).toEqual({ pending: 21, dead: 0 });
    } finally {
      watch.restore();
    }
  });

  it('fails every op of a transaction that failed, with its typed error, queues none of them, and goes on', async () => {
    const q = new IdbQueue('queue-group-full');
    await q.enqueue(op('a'));
    const add = IDBObjectStore.prototype.add;
    IDBObjectStore.prototype.add = function (this: IDBObjectStore, value: unknown, key?: IDBValidKey) {
      if ((value as NewOp).opId === 'c') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return add.call(this, value, key);
    };
    try {
      // x goes alone; b, c and d, made while it commits, share the next transaction and fail together.
      const outcomes = await Promise.allSettled(['x', 'b', 'c', 'd'].map((id) => q.enqueue(op(id))));
      expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'rejected', 'rejected']);
      const [, b, c, d] = outcomes as PromiseRejectedResult[];
      expect(c!.reason).toMatchObject({ code: 'storage_full' });
      expect(b!.reason).toBe(c!.reason);
      expect(d!.reason).toBe(c!.reason);
    } finally {
      IDBObjectStore.prototype.add = add;
    }
    await q.enqueue(op('e'));
    expect((await q.ops('t')).map((o) => o.opId)).toEqual(['a', 'x', 'e']);
    expect(await q.counts('t')).toEqual({ pending: 3, dead: 0 });
  });
});

describe('IdbQueue with the disk full', () => {
  it('reports StorageFullError to the caller and keeps what it had queued', async () => {
    const q = new IdbQueue('queue-full');
    await q.enqueue(op('1'));
    const add = IDBObjectStore.prototype.add;
    IDBObjectStore.prototype.add = function () {
      throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
    };
    try {
      await expect(q.enqueue(op('2'))).rejects.toMatchObject({ code: 'storage_full' });
    } finally {
      IDBObjectStore.prototype.add = add;
    }
    expect((await q.ops()).map((o) => o.opId)).toEqual(['1']);
    await q.enqueue(op('3'));
    expect((await q.ops()).map((o) => o.opId)).toEqual(['1', '3']);
  });

  it('reports a transaction aborted by the quota as StorageFullError too', async () => {
    const { storageError, StorageFullError } = await import('../src/errors.js');
    const abort = { name: 'AbortError', target: { error: new DOMException('quota', 'QuotaExceededError') } };
    expect(storageError(abort)).toBeInstanceOf(StorageFullError);
    expect(storageError(new Error('other'))).not.toBeInstanceOf(StorageFullError);
  });
});

describe('IdbQueue schema upgrades', () => {
  it('carries every op of a version 1 database over, with its counts', async () => {
    const { openDB } = await import('idb');
    const { upgradeQueue } = await import('../src/queue/idb-queue.js');
    const v1 = await openDB('queue-v1', 1, { upgrade: (db, old, _new, tx) => void upgradeQueue(db as never, old, 1, tx as never) });
    expect([...v1.objectStoreNames].sort()).toEqual(['applied', 'ops']);
    for (const [opId, status] of [['1', 'queued'], ['2', 'dead'], ['3', 'in-flight'], ['4', 'queued']] as const) {
      await v1.add('ops', { ...op(opId), status, attempts: 0, nextAttemptAt: 0 } as never);
    }
    await v1.put('applied', { status: 'applied', opId: '0', table: 't', kind: 'insert', result: null, appliedAt: 1 });
    v1.close();

    const q = new IdbQueue('queue-v1');
    expect((await q.ops('t')).map((o) => [o.opId, o.status])).toEqual([['1', 'queued'], ['2', 'dead'], ['3', 'in-flight'], ['4', 'queued']]);
    expect(await q.counts('t')).toEqual({ pending: 3, dead: 1 });
    expect(await q.record('0')).toMatchObject({ status: 'applied' });
    expect(await q.take('t', 10)).toMatchObject({ op: { opId: '1' } });
  });

  it('keeps its counts exact through every kind of change', async () => {
    const q = new IdbQueue('queue-counts');
    for (const id of ['1', '2', '3', '4']) await q.enqueue(op(id));
    await q.enqueue(op('1'));
    expect(await q.counts('t')).toEqual({ pending: 4, dead: 0 });
    await q.take('t', 10);
    await q.kill('1', err, 10);
    expect(await q.counts('t')).toEqual({ pending: 3, dead: 1 });
    await q.revive('1', 10);
    expect(await q.counts('t')).toEqual({ pending: 4, dead: 0 });
    await q.take('t', 10);
    await q.applied('2', null, 20);
    await q.discard('3', 20);
    await q.take('t', 30);
    await q.retryLater('4', err, 40);
    expect(await q.counts('t')).toEqual({ pending: 2, dead: 0 });
    expect(await q.counts('other')).toEqual({ pending: 0, dead: 0 });
  });
});
