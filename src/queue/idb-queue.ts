import type { DBSchema, IDBPDatabase, IDBPTransaction, StoreNames } from 'idb';
import { IdbConnection } from '../idb-connection.js';
import { storageError, UnknownOpError, VantageError, type ErrorInfo } from '../errors.js';
import {
  type Amend,
  type AppliedItem,
  APPLIED_MEMORY,
  joinsBatch,
  deadLetterWalk,
  opTarget,
  rewriteId,
  type DeathReason,
  type DoneOp,
  type IdRewrite,
  type NewOp,
  type OpRecord,
  type QueuedOp,
  type Take,
  type WriteQueue,
} from './types.js';

interface QueueSchema extends DBSchema {
  ops: {
    key: number;
    value: QueuedOp;
    indexes: { opId: string; tableSeq: [string, number]; tableStatus: [string, string] };
  };
  /** Ops that left the queue, applied or discarded (the store's name predates discarded ones). */
  applied: { key: string; value: DoneOp; indexes: { appliedAt: number } };
  /** Running counts, kept in the same transactions as the ops: `pending/TABLE`, `dead/TABLE`, `applied`. */
  meta: { key: string; value: number };
}

/** Bump when the stores change, and add a step to `upgradeQueue` that carries every queued op over. */
export const QUEUE_SCHEMA_VERSION = 2;

type AnyTx = IDBPTransaction<QueueSchema, Stores[], 'versionchange' | 'readwrite'>;

/**
 * The schema's history, one step per version, so a database of any older
 * version is brought up to date with every op it holds.
 */
export async function upgradeQueue(db: IDBPDatabase<QueueSchema>, oldVersion: number, newVersion: number, tx: AnyTx): Promise<void> {
  if (oldVersion < 1) {
    const ops = db.createObjectStore('ops', { keyPath: 'seq', autoIncrement: true });
    ops.createIndex('opId', 'opId', { unique: true });
    ops.createIndex('tableSeq', ['table', 'seq']);
    ops.createIndex('tableStatus', ['table', 'status']);
    db.createObjectStore('applied', { keyPath: 'opId' }).createIndex('appliedAt', 'appliedAt');
  }
  if (oldVersion < 2 && newVersion >= 2) {
    // Version 2 keeps counts instead of counting per call; they start from the ops already queued.
    db.createObjectStore('meta');
    for (let cursor = await tx.objectStore('ops').openCursor(); cursor; cursor = await cursor.continue()) {
      await tally(tx, cursor.value.table, undefined, cursor.value.status);
    }
    await tx.objectStore('meta').put(await tx.objectStore('applied').count(), 'applied');
  }
}

type Status = QueuedOp['status'];
const bucket = (status: Status | undefined) => (status === undefined ? undefined : status === 'dead' ? 'dead' : 'pending');

/** Move one op of `table` from one status to another in the running counts (undefined: not in the queue). */
async function tally(tx: AnyTx, table: string, from: Status | undefined, to: Status | undefined): Promise<void> {
  const [was, is] = [bucket(from), bucket(to)];
  if (was === is) return;
  if (was) await bump(tx, `${was}/${table}`, -1);
  if (is) await bump(tx, `${is}/${table}`, +1);
}

async function bump(tx: AnyTx, key: string, delta: number): Promise<void> {
  const meta = tx.objectStore('meta');
  await meta.put(((await meta.get(key)) ?? 0) + delta, key);
}

/** Keep a record of an op that left the queue, forgetting the oldest past APPLIED_MEMORY. */
async function remember(tx: AnyTx, record: DoneOp): Promise<void> {
  const done = tx.objectStore('applied');
  await done.put(record);
  let kept = ((await tx.objectStore('meta').get('applied')) ?? 0) + 1;
  for (let cursor = await done.index('appliedAt').openCursor(); cursor; cursor = await cursor.continue()) {
    if (kept <= APPLIED_MEMORY.count && cursor.value.appliedAt >= record.appliedAt - APPLIED_MEMORY.ms) break;
    await cursor.delete();
    kept--;
  }
  await tx.objectStore('meta').put(kept, 'applied');
}

type Stores = StoreNames<QueueSchema>;
type Tx<S extends Stores[]> = IDBPTransaction<QueueSchema, S, 'readwrite'>;

/**
 * The WriteQueue in IndexedDB. Every change is one transaction. Those a user
 * relies on (queuing an op, a dead letter, a retry or discard asked for) use
 * `durability: 'strict'`, so when the method resolves the change is on disk
 * (W1); Chrome's default durability would only promise it reached the OS.
 * The flusher's own bookkeeping (`take`, `applied`, `retryLater`) is relaxed:
 * if a crash loses it, the op is sent again with its idempotency key and the
 * master replays its first answer, so nothing is lost or applied twice, and a
 * flush does not wait on two disk flushes per op.
 * No transaction is held across anything but IndexedDB requests: the flusher
 * talks to the master between `take` and `applied`, never inside one.
 */
export class IdbQueue implements WriteQueue {
  readonly kind = 'IdbQueue';
  private readonly conn: IdbConnection<QueueSchema>;

  /** @param dbName the IndexedDB database the queue lives in; every LiveTable of an origin can share one. */
  constructor(dbName = 'vantage-live-queue') {
    this.conn = new IdbConnection<QueueSchema>(dbName, QUEUE_SCHEMA_VERSION, (db, oldVersion, newVersion, tx) =>
      void upgradeQueue(db, oldVersion, newVersion ?? QUEUE_SCHEMA_VERSION, tx as AnyTx),
    );
  }

  /** The database's name (a wipe deletes it). */
  get dbName(): string {
    return this.conn.name;
  }

  enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }> {
    return this.write(['ops', 'applied', 'meta'], 'strict', async (tx) => {
      const known = (await tx.objectStore('ops').index('opId').get(op.opId)) ?? (await tx.objectStore('applied').get(op.opId));
      if (known) return { record: known, created: false };
      const draft = { ...op, status: 'queued', attempts: 0, nextAttemptAt: 0 } as const;
      const seq = await tx.objectStore('ops').add(draft as QueuedOp);
      await tally(tx, op.table, undefined, 'queued');
      return { record: { ...draft, seq }, created: true };
    });
  }

  take(table: string, now: number, max = 1): Promise<Take | undefined> {
    return this.write(['ops'], 'relaxed', async (tx) => {
      const waitsBehind = deadLetterWalk();
      const ops: QueuedOp[] = [];
      for (let cursor = await tx.objectStore('ops').index('tableSeq').openCursor(tableRange(table)); cursor; cursor = await cursor.continue()) {
        const op = cursor.value;
        if (waitsBehind(op) !== undefined) continue;
        if (ops.length > 0 && (op.nextAttemptAt > now || !joinsBatch(ops, op))) break;
        if (op.nextAttemptAt > now) return { retryAt: op.nextAttemptAt };
        const taken: QueuedOp = { ...op, status: 'in-flight', firstSentAt: op.firstSentAt ?? now };
        await cursor.update(taken);
        ops.push(taken);
        if (ops.length >= max) break;
      }
      return ops.length === 0 ? undefined : max > 1 ? { op: ops[0]!, ops } : { op: ops[0]! };
    });
  }

  appliedMany(items: AppliedItem[], now: number): Promise<void> {
    return this.write(['ops', 'applied', 'meta'], 'relaxed', async (tx) => {
      for (const { opId, result, rewrite } of items) await this.settleApplied(tx, opId, result, now, rewrite);
    });
  }

  applied(opId: string, result: unknown, now: number, rewrite?: IdRewrite): Promise<void> {
    return this.write(['ops', 'applied', 'meta'], 'relaxed', (tx) => this.settleApplied(tx, opId, result, now, rewrite));
  }

  private async settleApplied(tx: Tx<['ops', 'applied', 'meta']>, opId: string, result: unknown, now: number, rewrite?: IdRewrite): Promise<void> {
    const op = await this.must(tx, opId);
    await tx.objectStore('ops').delete(op.seq);
    await tally(tx, op.table, op.status, undefined);
    if (rewrite) {
      for (let cursor = await tx.objectStore('ops').index('tableSeq').openCursor(tableRange(op.table)); cursor; cursor = await cursor.continue()) {
        const changed = rewriteId(cursor.value, rewrite);
        if (changed !== cursor.value) await cursor.update(changed);
      }
    }
    await remember(tx, { status: 'applied', opId, table: op.table, kind: op.kind, id: opTarget(op), result, appliedAt: now });
  }

  async retryLater(opId: string, error: ErrorInfo, nextAttemptAt: number, answered = false): Promise<void> {
    await this.update(opId, 'relaxed', (op) => ({
      ...op,
      status: 'queued',
      attempts: op.attempts + 1,
      answeredFailures: (op.answeredFailures ?? 0) + (answered ? 1 : 0),
      lastError: error,
      nextAttemptAt,
    }));
  }

  async kill(opId: string, error: ErrorInfo, now: number, reason: DeathReason = 'rejected'): Promise<void> {
    await this.update(opId, 'strict', (op) => ({ ...op, status: 'dead', attempts: op.attempts + 1, lastError: error, deadReason: reason, diedAt: now }));
  }

  revive(opId: string, now: number, amend?: Amend): Promise<{ op: OpRecord; revived: boolean; overtaken: number }> {
    return this.write(['ops', 'applied', 'meta'], 'strict', async (tx) => {
      const op = await tx.objectStore('ops').index('opId').get(opId);
      if (op?.status !== 'dead') return { op: await this.mustRecord(tx, opId), revived: false, overtaken: 0 };
      // The op and the ops that waited behind it move to the end, in their order, each under a new seq.
      const ops = tx.objectStore('ops');
      const waitsBehind = deadLetterWalk();
      const moving: QueuedOp[] = [];
      for (let cursor = await ops.index('tableSeq').openCursor(tableRange(op.table)); cursor; cursor = await cursor.continue()) {
        const by = waitsBehind(cursor.value);
        if (cursor.value.opId === opId || (cursor.value.status !== 'dead' && by === opId)) moving.push(cursor.value);
      }
      let revived = op;
      for (const moved of moving) {
        await ops.delete(moved.seq);
        const { seq: _old, ...rest } = moved.opId === opId ? { ...moved, ...amend, status: 'queued' as const, nextAttemptAt: now, deadReason: undefined } : moved;
        const seq = await ops.add(rest as QueuedOp);
        if (moved.opId === opId) revived = { ...rest, seq } as QueuedOp;
      }
      await tally(tx, op.table, 'dead', 'queued');
      const target = opTarget(op);
      let overtaken = 0;
      const since = IDBKeyRange.lowerBound(op.diedAt ?? 0);
      for (let cursor = await tx.objectStore('applied').index('appliedAt').openCursor(since); cursor; cursor = await cursor.continue()) {
        const done = cursor.value;
        if (done.status === 'applied' && done.table === op.table && (done.kind === 'deleteAll' || done.id === target)) overtaken++;
      }
      return { op: revived, revived: true, overtaken };
    });
  }

  discard(opId: string, now: number): Promise<OpRecord> {
    return this.write(['ops', 'applied', 'meta'], 'strict', async (tx) => {
      const op = await tx.objectStore('ops').index('opId').get(opId);
      if (!op) return this.mustRecord(tx, opId);
      if (op.status === 'in-flight') throw new VantageError('in_flight', `Op "${opId}" is being sent and cannot be discarded`);
      await tx.objectStore('ops').delete(op.seq);
      await tally(tx, op.table, op.status, undefined);
      const record: DoneOp = { status: 'discarded', opId, table: op.table, kind: op.kind, id: opTarget(op), appliedAt: now };
      await remember(tx, record);
      return record;
    });
  }

  async ops(table?: string): Promise<QueuedOp[]> {
    const db = await this.conn.get();
    return table === undefined ? db.getAll('ops') : db.getAllFromIndex('ops', 'tableSeq', tableRange(table));
  }

  async counts(table: string): Promise<{ pending: number; dead: number }> {
    const db = await this.conn.get();
    const [pending = 0, dead = 0] = await Promise.all([db.get('meta', `pending/${table}`), db.get('meta', `dead/${table}`)]);
    return { pending, dead };
  }

  async record(opId: string): Promise<OpRecord | undefined> {
    const db = await this.conn.get();
    return (await db.getFromIndex('ops', 'opId', opId)) ?? (await db.get('applied', opId));
  }

  /** Close the database connection (tests that simulate a restart, a wipe); the next call opens it again. */
  close(): Promise<void> {
    return this.conn.close();
  }

  private update<T extends QueuedOp>(opId: string, durability: IDBTransactionDurability, change: (op: QueuedOp) => T): Promise<T> {
    return this.write(['ops', 'meta'], durability, async (tx) => {
      const op = await this.must(tx, opId);
      const next = change(op);
      await tx.objectStore('ops').put(next);
      await tally(tx, op.table, op.status, next.status);
      return next;
    });
  }

  private async must(tx: Tx<['ops', ...Stores[]]>, opId: string): Promise<QueuedOp> {
    const op = await tx.objectStore('ops').index('opId').get(opId);
    if (!op) throw new UnknownOpError(opId);
    return op;
  }

  private async mustRecord(tx: Tx<['ops', 'applied', ...Stores[]]>, opId: string): Promise<OpRecord> {
    const rec = (await tx.objectStore('ops').index('opId').get(opId)) ?? (await tx.objectStore('applied').get(opId));
    if (!rec) throw new UnknownOpError(opId);
    return rec;
  }

  // One read-write transaction: resolves after it commits, with a full disk reported as StorageFullError.
  private async write<S extends Stores[], T>(stores: S, durability: IDBTransactionDurability, body: (tx: Tx<S>) => Promise<T>): Promise<T> {
    const tx = (await this.conn.get()).transaction(stores, 'readwrite', { durability });
    try {
      const result = await body(tx);
      await tx.done;
      return result;
    } catch (err) {
      abortQuietly(tx);
      await tx.done.catch(() => {});
      throw storageError(err);
    }
  }
}

// A transaction that already committed or aborted throws on abort(); one still open must be aborted.
function abortQuietly(tx: { abort(): void }): void {
  try {
    tx.abort();
  } catch {
    // already finished
  }
}

function tableRange(table: string): IDBKeyRange {
  return IDBKeyRange.bound([table, -Infinity], [table, Infinity]);
}
