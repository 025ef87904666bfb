import type { DBSchema, IDBPDatabase, IDBPObjectStore, IDBPTransaction, StoreNames } from 'idb';
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

/** `tally` for many ops at once: one read and one write per count that changes. */
async function tallyMany(tx: AnyTx, moves: Array<{ table: string; from: Status | undefined; to: Status | undefined }>): Promise<void> {
  const deltas = new Map<string, number>();
  const add = (key: string, d: number) => deltas.set(key, (deltas.get(key) ?? 0) + d);
  for (const { table, from, to } of moves) {
    const [was, is] = [bucket(from), bucket(to)];
    if (was === is) continue;
    if (was) add(`${was}/${table}`, -1);
    if (is) add(`${is}/${table}`, +1);
  }
  await Promise.all([...deltas].filter(([, d]) => d !== 0).map(([key, d]) => bump(tx, key, d)));
}

async function bump(tx: AnyTx, key: string, delta: number): Promise<void> {
  const meta = tx.objectStore('meta');
  await meta.put(((await meta.get(key)) ?? 0) + delta, key);
}

/** Keep records of ops that left the queue (all at one time), forgetting the oldest past APPLIED_MEMORY. */
async function remember(tx: AnyTx, records: DoneOp[]): Promise<void> {
  const done = tx.objectStore('applied');
  const [count = 0] = await Promise.all([tx.objectStore('meta').get('applied'), ...records.map((record) => done.put(record))]);
  const newest = Math.max(...records.map((r) => r.appliedAt));
  const kept = count + records.length;
  // The oldest records past the count and those older than the window: their keys in one read, deleted together
  // (a cursor would take a request per record, every batch once the memory is full).
  const byAge = done.index('appliedAt');
  const [oldest, expired] = await Promise.all([
    kept > APPLIED_MEMORY.count ? byAge.getAllKeys(null, kept - APPLIED_MEMORY.count) : [],
    byAge.getAllKeys(IDBKeyRange.upperBound(newest - APPLIED_MEMORY.ms, true)),
  ]);
  const forgotten = new Set([...oldest, ...expired]);
  await Promise.all([...[...forgotten].map((key) => done.delete(key)), tx.objectStore('meta').put(kept - forgotten.size, 'applied')]);
}

type Stores = StoreNames<QueueSchema>;

/** Ops read beyond `max` per request when taking: dead letters and the ops behind them are skipped. */
const TAKE_SLACK = 20;
type Tx<S extends Stores[]> = IDBPTransaction<QueueSchema, S, 'readwrite'>;

/**
 * The WriteQueue in IndexedDB. Every change is one transaction (ops queued
 * together share one: group commit, see `enqueue`). Those a user relies on
 * (queuing an op, a dead letter, a retry or discard asked for) use
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
  // Group commit: ops waiting for the next enqueue transaction, and the loop that commits them.
  private gathering: Array<{ op: NewOp; resolve(r: { record: OpRecord; created: boolean }): void; reject(err: unknown): void }> = [];
  private committing: Promise<void> | undefined;
  // The seq of each table's first op as `take` last found it, per open database (a deleted one starts again at 1).
  private readonly heads = new WeakMap<object, Map<string, number>>();

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

  /**
   * Queue an op; resolves once it is on disk (W1). Group commit: ops queued
   * while a commit is under way wait for it and then go to disk together, in
   * the order they were queued, in one strict transaction, so a burst pays one
   * disk flush instead of one per op; a lone op starts at once. Each caller
   * hears only after the transaction holding its op committed, and if it
   * fails, every op in it fails with the same error (nothing of it was queued).
   */
  enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }> {
    return new Promise((resolve, reject) => {
      this.gathering.push({ op, resolve, reject });
      if (!this.committing) this.committing = this.commitGroups();
    });
  }

  // Commit what has gathered, one group at a time, until nothing is left.
  private async commitGroups(): Promise<void> {
    while (this.gathering.length > 0) {
      const group = this.gathering;
      this.gathering = [];
      try {
        const results = await this.write(['ops', 'applied', 'meta'], 'strict', (tx) => this.enqueueAll(tx, group.map((g) => g.op)));
        group.forEach((g, i) => g.resolve(results[i]!));
      } catch (err) {
        for (const g of group) g.reject(err);
      }
    }
    this.committing = undefined;
  }

  private async enqueueAll(tx: Tx<['ops', 'applied', 'meta']>, ops: NewOp[]): Promise<Array<{ record: OpRecord; created: boolean }>> {
    const byOpId = tx.objectStore('ops').index('opId');
    const known = await Promise.all(ops.map(async (op) => (await Promise.all([byOpId.get(op.opId), tx.objectStore('applied').get(op.opId)])).find(Boolean)));
    const added = new Map<string, OpRecord>();
    const results: Array<{ record: OpRecord; created: boolean } | Promise<{ record: OpRecord; created: boolean }>> = [];
    ops.forEach((op, i) => {
      // The same op queued twice in one group (a resent call) is queued once, as it would be in two.
      const record = known[i] ?? added.get(op.opId);
      if (record) return results.push({ record, created: false });
      const draft = { ...op, status: 'queued', attempts: 0, nextAttemptAt: 0 } as const;
      added.set(op.opId, draft as QueuedOp);
      // Requests run in the order they are made: seqs follow the order of the calls. A request refused at once
      // (a value that cannot be stored) rejects like one that fails later, so every request made is awaited.
      results.push(
        (async () => tx.objectStore('ops').add(draft as QueuedOp))().then((seq) => ({ record: { ...draft, seq }, created: true })),
      );
    });
    // The counts change by the ops added, known already: counted while the adds are under way.
    const [settled] = await Promise.all([Promise.all(results), tallyMany(tx, [...added.values()].map((op) => ({ table: op.table, from: undefined, to: 'queued' as const })))]);
    return settled;
  }

  take(table: string, now: number, max = 1): Promise<Take | undefined> {
    return this.write(['ops'], 'relaxed', async (tx) => {
      const store = tx.objectStore('ops');
      const waitsBehind = deadLetterWalk();
      const ops: QueuedOp[] = [];
      // Seqs only grow (a revived op gets a new one), so no op of the table can come before the head a take once
      // found: the scan starts there, not at the front of an index a long drain has filled with deleted entries.
      const heads = this.heads.get(tx.db) ?? this.heads.set(tx.db, new Map()).get(tx.db)!;
      // Read in chunks rather than step a cursor: one request per chunk instead of one per op. The first chunk is
      // the head and the op after it, all a take reads when the head waits out a backoff (a take follows every
      // write) or when a lone op was queued.
      let chunk = 2;
      let range = IDBKeyRange.bound([table, heads.get(table) ?? -Infinity], [table, Infinity]);
      scan: for (let first = true; ; chunk = max + TAKE_SLACK, first = false) {
        const found = await store.index('tableSeq').getAll(range, chunk);
        if (first && found[0]) heads.set(table, found[0].seq);
        for (const op of found) {
          if (waitsBehind(op) !== undefined) continue;
          if (ops.length > 0 && (op.nextAttemptAt > now || !joinsBatch(ops, op))) break scan;
          if (op.nextAttemptAt > now) return { retryAt: op.nextAttemptAt };
          ops.push({ ...op, status: 'in-flight', firstSentAt: op.firstSentAt ?? now });
          if (ops.length >= max) break scan;
        }
        if (found.length < chunk) break;
        range = IDBKeyRange.bound([table, found[found.length - 1]!.seq], [table, Infinity], true);
      }
      await Promise.all(ops.map((op) => store.put(op)));
      return ops.length === 0 ? undefined : max > 1 ? { op: ops[0]!, ops } : { op: ops[0]! };
    });
  }

  /** Settle applied ops in one transaction, its requests made together rather than one after another. */
  appliedMany(items: AppliedItem[], now: number): Promise<void> {
    return this.write(['ops', 'applied', 'meta'], 'relaxed', async (tx) => {
      const store = tx.objectStore('ops');
      const ops = (await findTaken(store, items)).map((op, i) => op ?? unknownOp(items[i]!.opId));
      // An insertReturnId ends its batch (joinsBatch): the ops it rewrites all come after every op settled here.
      const rewrites = async () => {
        for (const [i, { rewrite }] of items.entries()) {
          if (!rewrite) continue;
          for (let cursor = await store.index('tableSeq').openCursor(tableRange(ops[i]!.table)); cursor; cursor = await cursor.continue()) {
            const changed = rewriteId(cursor.value, rewrite);
            if (changed !== cursor.value) await cursor.update(changed);
          }
        }
      };
      // The steps touch different records, so their requests go together; the deletes are made first.
      await Promise.all([
        ...seqRuns(ops.map((op) => op.seq)).map((run) => store.delete(run)),
        tallyMany(tx, ops.map((op) => ({ table: op.table, from: op.status, to: undefined }))),
        rewrites(),
        remember(tx, items.map(({ result }, i) => ({ status: 'applied', opId: ops[i]!.opId, table: ops[i]!.table, kind: ops[i]!.kind, id: opTarget(ops[i]!), result, appliedAt: now }))),
      ]);
    });
  }

  applied(opId: string, result: unknown, now: number, rewrite?: IdRewrite): Promise<void> {
    return this.appliedMany([{ opId, result, rewrite }], now);
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
      await remember(tx, [record]);
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

function unknownOp(opId: string): never {
  throw new UnknownOpError(opId);
}

/**
 * The ops of `items`, in their order (undefined: not in the queue). Items that
 * say their seq are read in one request over the span of their seqs (a batch's
 * are usually consecutive), the others, and any where the span is mostly other
 * ops, one lookup each.
 */
async function findTaken(store: IDBPObjectStore<QueueSchema, Stores[], 'ops', 'readwrite'>, items: AppliedItem[]): Promise<Array<QueuedOp | undefined>> {
  const seqs = items.flatMap(({ seq }) => (seq === undefined ? [] : [seq]));
  const [low, high] = [Math.min(...seqs), Math.max(...seqs)];
  const span = seqs.length < 2 || high - low >= 4 * seqs.length ? [] : await store.getAll(IDBKeyRange.bound(low, high));
  const bySeq = new Map(span.map((op) => [op.seq, op]));
  return Promise.all(items.map(async ({ opId, seq }) => {
    const op = seq === undefined ? undefined : bySeq.get(seq);
    return op?.opId === opId ? op : store.index('opId').get(opId);
  }));
}

/** Keys as few ranges as cover exactly them: integers in a row are one range. */
function seqRuns(seqs: number[]): IDBKeyRange[] {
  const sorted = [...seqs].sort((a, b) => a - b);
  const runs: IDBKeyRange[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    runs.push(IDBKeyRange.bound(sorted[i], sorted[j]));
    i = j + 1;
  }
  return runs;
}

function tableRange(table: string): IDBKeyRange {
  return IDBKeyRange.bound([table, -Infinity], [table, Infinity]);
}
