import type { Env } from '../env.js';
import type { Settled } from '../types.js';
import { Listeners } from '../listeners.js';
import { Flusher } from './flusher.js';
import type { RetryPolicy } from './retry-policy.js';
import { blockedOps, type DeathReason, type IdRewrite, type QueuedOp, type WriteQueue } from './types.js';

/** A pending op as reads and UIs see it: `blockedBy` names the dead letter it waits behind. */
export type PendingOp = QueuedOp & { blockedBy?: string };

/** What happened to one table's ops, as every LiveTable over that table hears it. */
export type QueueOutcome =
  | { type: 'queued'; op: QueuedOp }
  | { type: 'applied'; op: QueuedOp; result: unknown; rewrite?: IdRewrite }
  /** Several ops applied by one batch, in order: one invalidation for all. */
  | { type: 'applied-batch'; applied: Array<{ op: QueuedOp; result: unknown; rewrite?: IdRewrite }> }
  | { type: 'retrying'; op: QueuedOp; error: unknown; retryAt: number }
  | { type: 'dead'; op: QueuedOp; error: unknown; reason: DeathReason }
  | { type: 'revived'; op: QueuedOp; overtaken: number }
  | { type: 'discarded'; opId: string }
  | { type: 'auth'; state: 'required' | 'ok'; error?: unknown };

export interface TableQueueOptions {
  /** Send one op to the master. */
  apply(op: QueuedOp): Promise<unknown>;
  /** Send several in one request (Flusher's `applyBatch`); without it ops go one by one. */
  applyBatch?(ops: QueuedOp[]): Promise<Settled[] | undefined>;
  maxBatch?: number;
  policy: RetryPolicy;
  env: Env;
}

const registry = new WeakMap<WriteQueue, Map<string, TableQueue>>();

/**
 * One master table's share of a write queue: its single flusher, its pending
 * ops, and every LiveTable over it (views with their own cacheKeys). Whichever
 * view queued an op and whichever flush sent it, every view hears its outcome,
 * so each settles its own waiters and invalidates its own cache.
 */
export class TableQueue {
  readonly flusher: Flusher;
  private readonly views = new Listeners<QueueOutcome>('queue outcome');
  private memo: Promise<QueuedOp[]> | undefined;
  private told = 0;

  /**
   * The TableQueue of `table` in `queue`, made on first use with `opts`: views
   * that come later share the first view's master, policy and env.
   */
  static of(queue: WriteQueue, table: string, opts: TableQueueOptions): TableQueue {
    let tables = registry.get(queue);
    if (!tables) registry.set(queue, (tables = new Map()));
    let tq = tables.get(table);
    if (!tq) tables.set(table, (tq = new TableQueue(queue, table, opts)));
    return tq;
  }

  private constructor(
    readonly queue: WriteQueue,
    readonly table: string,
    opts: TableQueueOptions,
  ) {
    this.flusher = new Flusher({
      queue,
      table,
      apply: opts.apply,
      applyBatch: opts.applyBatch,
      maxBatch: opts.maxBatch,
      onAppliedBatch: (applied) => this.tell({ type: 'applied-batch', applied }),
      policy: opts.policy,
      env: opts.env,
      onApplied: (op, result, rewrite) => this.tell({ type: 'applied', op, result, rewrite }),
      onRetry: (op, error, retryAt) => void this.tell({ type: 'retrying', op, error, retryAt }),
      onDead: (op, error, reason) => this.tell({ type: 'dead', op, error, reason }),
      onAuthRequired: (_op, error) => void this.tell({ type: 'auth', state: 'required', error }),
    });
  }

  /** Hear every outcome; a view's handler may be async, and one that fails never keeps the others from hearing. Returns detach. */
  attach(hear: (outcome: QueueOutcome) => Promise<void> | void): () => void {
    const detach = this.views.add(hear);
    return () => {
      detach();
      if (this.views.size > 0) return;
      this.flusher.close();
      registry.get(this.queue)?.delete(this.table);
    };
  }

  /** New credentials: if writes were paused for them, tell every view and send again. */
  async resume(): Promise<void> {
    if (!this.flusher.authRequired) return;
    await this.tell({ type: 'auth', state: 'ok' });
    await this.flusher.resume();
  }

  /** How many outcomes this realm has told so far: unchanged across a wait, no op was queued, revived or settled meanwhile here. */
  get changes(): number {
    return this.told;
  }

  /** Tell every view, and wait until each has handled it. */
  async tell(outcome: QueueOutcome): Promise<void> {
    this.memo = undefined;
    this.told++;
    await this.views.emit(outcome);
  }

  /** The table's ops still waiting for the master, in order, each with the dead letter it is blocked behind if any. */
  async pending(): Promise<PendingOp[]> {
    const ops = await this.ops();
    const blocked = blockedOps(ops);
    return ops.filter((op) => op.status !== 'dead').map((op) => (blocked.has(op.opId) ? { ...op, blockedBy: blocked.get(op.opId) } : op));
  }

  /** The table's dead letters of reason "conflict": each waits for the app, holding the master's row. */
  async conflicts(): Promise<QueuedOp[]> {
    return (await this.ops()).filter((op) => op.status === 'dead' && op.deadReason === 'conflict');
  }

  // Every op of the table, read once per change.
  private ops(): Promise<QueuedOp[]> {
    if (this.memo) return this.memo;
    const read = this.queue.ops(this.table);
    this.memo = read;
    // A failed read is not kept: the next call reads again.
    read.catch(() => this.memo === read && (this.memo = undefined));
    return read;
  }
}
