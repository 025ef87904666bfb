import type { Env } from '../env.js';
import { AuthRequiredError, errorInfo, VantageError } from '../errors.js';
import { logger } from '../log.js';
import { judgeFailure, unsafeToResend, type RetryPolicy } from './retry-policy.js';
import { opTarget, type DeathReason, type IdRewrite, type QueuedOp, type WriteQueue } from './types.js';

const log = logger('vantage-live:queue');

/** How often a flusher that was told the network is gone checks again. */
const OFFLINE_RECHECK_MS = 5_000;

export interface FlusherOptions {
  queue: WriteQueue;
  table: string;
  /** Send one op to the master; resolves with the master's reply. */
  apply(op: QueuedOp): Promise<unknown>;
  policy: RetryPolicy;
  env: Env;
  /** `rewrite`: an insertReturnId's temporary id and the master's id, already rewritten in the queue. */
  onApplied(op: QueuedOp, result: unknown, rewrite: IdRewrite | undefined): Promise<void> | void;
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
          await withLock(`vantage-live:flush:${this.o.table}`, () => this.drain(skipBackoff)).catch((err) => {
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
      const next = await queue.take(table, skipBackoff ? Infinity : env.now());
      skipBackoff = false;
      if (!next) return;
      if ('retryAt' in next) return this.wakeAt(next.retryAt);
      const { op } = next;
      if (unsafeToResend(op, env.now(), this.o.policy)) {
        const err = new VantageError('outcome_unknown', `${op.kind} was first sent longer ago than the master keeps idempotency keys: whether it was applied is unknown, and sending it again could apply it twice`);
        await this.kill(op, err, 'outcome_unknown');
        continue;
      }
      log.debug('sending', { op: op.kind, opId: op.opId, id: opTarget(op), attempt: op.attempts + 1 });
      let result: unknown;
      try {
        result = await this.o.apply(op);
      } catch (err) {
        if (err instanceof AuthRequiredError) {
          // Not the op's fault: nothing counted, nothing dead; the table waits for credentials.
          this.paused = true;
          log.warn('credentials needed, writes paused', { op: op.kind, opId: op.opId, status: err.status });
          this.o.onAuthRequired(op, err);
          return;
        }
        const verdict = judgeFailure(err, op, env.now(), this.o.policy, env.random);
        if ('dead' in verdict) {
          await this.kill(op, err, verdict.dead);
          continue;
        }
        await queue.retryLater(op.opId, errorInfo(err), verdict.retryAt, verdict.answered);
        log.info('will retry', { op: op.kind, opId: op.opId, id: opTarget(op), outcome: 'failed', retryAt: verdict.retryAt });
        this.o.onRetry(op, err, verdict.retryAt);
        return this.wakeAt(verdict.retryAt);
      }
      const rewrite = op.kind === 'insertReturnId' ? { from: op.opId, to: String(result) } : undefined;
      await queue.applied(op.opId, result, env.now(), rewrite);
      log.debug('applied', { op: op.kind, opId: op.opId, id: opTarget(op) });
      await this.o.onApplied(op, result, rewrite);
    }
  }

  private async kill(op: QueuedOp, err: unknown, reason: DeathReason): Promise<void> {
    await this.o.queue.kill(op.opId, errorInfo(err), this.o.env.now(), reason);
    log.warn('dead letter', { op: op.kind, opId: op.opId, id: opTarget(op), outcome: 'failed', reason, error: errorInfo(err) });
    await this.o.onDead(op, err, reason);
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
