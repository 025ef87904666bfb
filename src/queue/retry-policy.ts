import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { ConflictError, isTransient, MasterUnavailableError } from '../errors.js';
import type { DeathReason, QueuedOp } from './types.js';

/** How the write queue retries, and when it gives up (W4). */
export interface RetryPolicy extends BackoffPolicy {
  /** Transient failures the master answered (5xx, 408, 429) before the op becomes a dead letter; network errors do not count. */
  maxAttempts: number;
  /** An op queued longer ago than this becomes a dead letter at its next transient failure, in ms. */
  maxAgeMs: number;
  /** How long the master keeps idempotency keys, in ms (the reference master: 24 h). Past it a resend is not blind-safe. */
  idempotencyWindowMs: number;
}

/** The one retry policy of the write queue. */
export const defaultRetryPolicy: RetryPolicy = {
  baseMs: 1_000,
  capMs: 5 * 60_000,
  maxAttempts: 20,
  maxAgeMs: 7 * 24 * 60 * 60_000,
  idempotencyWindowMs: 24 * 60 * 60_000,
};

export type Verdict = { retryAt: number; answered: boolean } | { dead: DeathReason };

/**
 * What to do with an op whose attempt failed: permanent failures and ops given
 * up on (too many answered failures, too old) become dead letters; transient
 * ones are retried after exponential backoff with full jitter, and never
 * sooner than the master's `Retry-After`.
 */
export function judgeFailure(err: unknown, op: Pick<QueuedOp, 'answeredFailures' | 'attempts' | 'enqueuedAt'>, now: number, policy: RetryPolicy, random: () => number): Verdict {
  if (err instanceof ConflictError) return { dead: 'conflict' };
  if (!isTransient(err)) return { dead: 'rejected' };
  const answered = typeof (err as { status?: unknown }).status === 'number';
  if (answered && (op.answeredFailures ?? 0) + 1 >= policy.maxAttempts) return { dead: 'gave_up' };
  if (now - op.enqueuedAt >= policy.maxAgeMs) return { dead: 'expired' };
  const asked = err instanceof MasterUnavailableError ? (err.retryAfterMs ?? 0) : 0;
  return { retryAt: now + Math.max(asked, backoffDelay(op.attempts, policy, random)), answered };
}

/**
 * Whether sending `op` again could apply it twice: it was first sent longer ago
 * than the master keeps idempotency keys, and its kind is not naturally
 * idempotent (a second insertReturnId makes a second row; a second deleteAll
 * deletes rows added since). Such an op's outcome is unknown.
 */
export function unsafeToResend(op: QueuedOp, now: number, policy: RetryPolicy): boolean {
  const kindRepeats = op.kind === 'insertReturnId' || op.kind === 'deleteAll';
  return kindRepeats && op.firstSentAt !== undefined && now - op.firstSentAt > policy.idempotencyWindowMs;
}
