import type { Env } from '../env.js';
import type { Settled } from '../types.js';
import { AuthRequiredError, errorInfo, VantageError } from '../errors.js';
import { logger } from '../log.js';
import { judgeFailure, unsafeToResend, type RetryPolicy } from './retry-policy.js';
import { opTarget, type DeathReason, type IdRewrite, type QueuedOp, type WriteQueue } from './types.js';

const log = logger('vantage-live:queue');

/** How often a flusher that was told the network is gone checks again. */
const OFFLINE_RECHECK_MS = 5_000;
/** Ops per batch unless the table says otherwise. */
const DEFAULT_MAX_BATCH = 100;

export interface FlusherOptions {
  queue: WriteQueue;
  table: string;
  /** Send one op to the master; resolves with the master's reply. */
  apply(op: QueuedOp): Promise<unknown>;
  /**
   * Send several ops in one request: an answer per op, as `apply` would have
   * resolved or thrown; undefined when the master takes no batches. Throws
   * only when the request as a whole failed. Without it, ops go one by one.
   */
  applyBatch?(ops: QueuedOp[]): Promise<Settled[] | undefined>;
  /** The most ops one batch carries (default 100). */
  maxBatch?: number;
  policy: RetryPolicy;
  env: Env;
  /** `rewrite`: an insertReturnId's temporary id and the master's id, already rewritten in the queue. */
  onApplied(op: QueuedOp, result: unknown, rewrite: IdRewrite | undefined): Promise<void> | void;
  /** Several ops applied by one batch, in order, told once (one invalidation); without it, `onApplied` for each. */
  onAppliedBatch?(applied: Array<{ op: QueuedOp; result: unknown; rewrite?: IdRewrite }>): Promise<void> | void;
  onRetry(op: QueuedOp, err: unknown, retryAt: number): void;
  onDead(op: QueuedOp, err: unknown, reason: DeathReason): Promise<void> | void;
  /** The master wants credentials: the flusher pauses until `resume()`; the op stays queued. */
  onAuthRequired(op: QueuedOp, err: AuthRequiredError): void;
}

/**
 * Drains one table's ops to the master, oldest first (W2). Single-flight: a
 * flush asked for while one runs makes that one look again instead of starting
 * a second; flushers of the same table wait for one lock (a Web Lock, shared
 * by tabs and workers, or an in-realm lock where Web Locks are missing), so no
 * op is ever sent by two at once.
 */
export class Flusher {
  private running: Promise<void> | undefined;
  private again = false;
  private skipBackoff = false;
  private timer: { at: number; cancel: () => void } | undefined;
  private closed = false;
  private paused = false;
  // Off once the master answered that it takes no batches: ops go one by one from then on.
  private batchesOff = false;
  // Outcomes told so far, in order; a drain goes on sending while they are told and waits for them at its end.
  private telling: Promise<void> = Promise.resolve();

  constructor(private readonly o: FlusherOptions) {}

  /**
   * Send every op that is due. Resolves when the queue has nothing more to send now.
   * @param opts.skipBackoff also send the table's head if it is waiting out a backoff:
   *   for signals that the master may be back (online, sync, a user's "flush now")
   */
  flush(opts: { skipBackoff?: boolean } = {}): Promise<void> {
    // Closed: nothing new starts, but a caller can still wait for the flush under way.
    if (this.closed) return this.running ?? Promise.resolve();
    if (this.paused) return Promise.resolve();
    this.skipBackoff ||= !!opts.skipBackoff;
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      try {
        do {
          this.again = false;
          const skipBackoff = this.skipBackoff;
          this.skipBackoff = false;
          await withLock(`vantage-live:flush:${this.o.table}`, () => this.drain(skipBackoff).finally(() => this.telling)).catch((err) => {
            // The queue itself failed (storage): nothing was lost, the op is still there. Look again later.
            log.error('flush failed', { error: errorInfo(err) });
            this.wakeAt(this.o.env.now() + this.o.policy.baseMs);
          });
        } while (this.again);
      } finally {
        this.running = undefined;
      }
    })();
    return this.running;
  }

  /** Whether the flusher waits for credentials (`auth-required`). */
  get authRequired(): boolean {
    return this.paused;
  }

  /** New credentials: send again, starting with the op that met the 401. */
  resume(): Promise<void> {
    this.paused = false;
    return this.flush({ skipBackoff: true });
  }

  /** Stop timers; later flushes do nothing. */
  close(): void {
    this.closed = true;
    this.timer?.cancel();
  }

  private async drain(skipBackoff: boolean): Promise<void> {
    const { queue, table, env } = this.o;
    for (;;) {
      if (this.paused || this.closed) return;
      if (!env.isOnline()) return this.wakeAt(env.now() + OFFLINE_RECHECK_MS);
      // Only the head can be waiting out a backoff, and it is skipped once: a failure now backs off again.
      const batching = this.o.applyBatch !== undefined && !this.batchesOff;
      const next = await queue.take(table, skipBackoff ? Infinity : env.now(), batching ? (this.o.maxBatch ?? DEFAULT_MAX_BATCH) : 1);
      skipBackoff = false;
      if (!next) return;
      if ('retryAt' in next) return this.wakeAt(next.retryAt);
      const ops: QueuedOp[] = [];
      for (const op of next.ops ?? [next.op]) {
        if (unsafeToResend(op, env.now(), this.o.policy)) {
          const err = new VantageError('outcome_unknown', `${op.kind} was first sent longer ago than the master keeps idempotency keys: whether it was applied is unknown, and sending it again could apply it twice`);
          await this.kill(op, err, 'outcome_unknown');
        } else ops.push(op);
      }
      if (ops.length > 1) {
        const go = await this.sendBatch(ops);
        if (go === 'stop') return;
        if (go === 'sent') continue;
        // The master takes no batches: the head goes alone; the others are taken again.
      }
      const op = ops[0];
      if (op === undefined) continue;
      log.debug('sending', { op: op.kind, opId: op.opId, id: opTarget(op), attempt: op.attempts + 1 });
      let result: unknown;
      try {
        result = await this.o.apply(op);
      } catch (err) {
        if (await this.failed(op, err)) return;
        continue;
      }
      const rewrite = op.kind === 'insertReturnId' ? { from: op.opId, to: String(result) } : undefined;
      await queue.applied(op.opId, result, env.now(), rewrite);
      log.debug('applied', { op: op.kind, opId: op.opId, id: opTarget(op) });
      this.tell(() => this.o.onApplied(op, result, rewrite));
    }
  }

  /**
   * One batch: sent in one request, its applied ops settled in one step and
   * told once; each refused op as if sent alone (dead letter or retry). A
   * whole-batch failure is the head's, as if it had been sent alone; the
   * others stay taken and go again with it. 'stop': the drain ends here.
   */
  private async sendBatch(ops: QueuedOp[]): Promise<'sent' | 'stop' | 'unsupported'> {
    const { queue, env } = this.o;
    log.debug('sending batch', { ops: ops.length, first: ops[0]!.opId });
    let settled: Settled[] | undefined;
    try {
      settled = await this.o.applyBatch!(ops);
    } catch (err) {
      return (await this.failed(ops[0]!, err)) ? 'stop' : 'sent';
    }
    if (settled === undefined) {
      this.batchesOff = true;
      return 'unsupported';
    }
    const applied: Array<{ op: QueuedOp; result: unknown; rewrite?: IdRewrite }> = [];
    const refused: Array<{ op: QueuedOp; error: unknown }> = [];
    ops.forEach((op, i) => {
      const one = settled[i]!;
      if (!one.ok) return refused.push({ op, error: one.error });
      const rewrite = op.kind === 'insertReturnId' ? { from: op.opId, to: String(one.value) } : undefined;
      applied.push({ op, result: one.value, rewrite });
    });
    if (applied.length > 0) {
      await queue.appliedMany(applied.map(({ op, result, rewrite }) => ({ opId: op.opId, seq: op.seq, result, rewrite })), env.now());
      log.debug('applied batch', { ops: applied.length });
      const { onAppliedBatch, onApplied } = this.o;
      this.tell(async () => {
        if (onAppliedBatch) await onAppliedBatch(applied);
        else for (const { op, result, rewrite } of applied) await onApplied(op, result, rewrite);
      });
    }
    let stop = false;
    // Ops on other rows than each other: a refused op's outcome touches no other op of the batch.
    for (const { op, error } of refused) stop = (await this.failed(op, error)) || stop;
    return stop ? 'stop' : 'sent';
  }

  /** An op's failure, settled as for an op sent alone; true when the drain must stop (paused, or waiting out a retry). */
  private async failed(op: QueuedOp, err: unknown): Promise<boolean> {
    const { queue, env } = this.o;
    if (err instanceof AuthRequiredError) {
      // Not the op's fault: nothing counted, nothing dead; the table waits for credentials.
      this.paused = true;
      log.warn('credentials needed, writes paused', { op: op.kind, opId: op.opId, status: err.status });
      this.tell(() => this.o.onAuthRequired(op, err));
      return true;
    }
    const verdict = judgeFailure(err, op, env.now(), this.o.policy, env.random);
    if ('dead' in verdict) {
      await this.kill(op, err, verdict.dead);
      return false;
    }
    await queue.retryLater(op.opId, errorInfo(err), verdict.retryAt, verdict.answered);
    log.info('will retry', { op: op.kind, opId: op.opId, id: opTarget(op), outcome: 'failed', retryAt: verdict.retryAt });
    this.tell(() => this.o.onRetry(op, err, verdict.retryAt));
    this.wakeAt(verdict.retryAt);
    return true;
  }

  private async kill(op: QueuedOp, err: unknown, reason: DeathReason): Promise<void> {
    await this.o.queue.kill(op.opId, errorInfo(err), this.o.env.now(), reason);
    log.warn('dead letter', { op: op.kind, opId: op.opId, id: opTarget(op), outcome: 'failed', reason, error: errorInfo(err) });
    this.tell(() => this.o.onDead(op, err, reason));
  }

  /**
   * Tell an outcome after those before it, without waiting: the next batch is
   * taken and sent while the last one's invalidation and events go out (they
   * never touch the queue). A listener's failure is logged, never lost in the chain.
   */
  private tell(fn: () => Promise<void> | void): void {
    this.telling = this.telling.then(fn).catch((err) => log.error('an outcome was not told', { error: errorInfo(err) }));
  }

  // One timer per flusher, for the earliest time anything is due.
  private wakeAt(at: number): void {
    if (this.closed || (this.timer && this.timer.at <= at && this.timer.at > this.o.env.now())) return;
    this.timer?.cancel();
    const cancel = this.o.env.setTimer(() => {
      this.timer = undefined;
      void this.flush();
    }, Math.max(0, at - this.o.env.now()));
    this.timer = { at, cancel };
  }
}

type LockManagerLike = { request(name: string, cb: () => Promise<void>): Promise<void> };

// Without Web Locks (Node, old browsers), flushers of one realm still take turns per table.
const localLocks = new Map<string, Promise<void>>();

function withLock(name: string, fn: () => Promise<void>): Promise<void> {
  const locks = (globalThis as { navigator?: { locks?: LockManagerLike } }).navigator?.locks;
  if (locks) return locks.request(name, fn);
  const turn = (localLocks.get(name) ?? Promise.resolve()).then(fn);
  const settled = turn.catch(() => {});
  localLocks.set(name, settled);
  void settled.then(() => localLocks.get(name) === settled && localLocks.delete(name));
  return turn;
}
