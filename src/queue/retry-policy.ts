import { backoffDelay, type BackoffPolicy } from '../backoff.js';
import { isTransient, MasterUnavailableError } from '../errors.js';

/** The one retry policy of the write queue (W4). */
export const defaultRetryPolicy: BackoffPolicy = { baseMs: 1_000, capMs: 5 * 60_000 };

export type Verdict = { retryAt: number } | { dead: true };

/**
 * What to do with an op whose attempt failed: transient failures (no answer,
 * 408, 429, 5xx) are retried after exponential backoff with full jitter, and
 * never sooner than the master's `Retry-After`; anything else is permanent.
 *
 * @param attempts how many attempts failed before this one
 */
export function judgeFailure(err: unknown, attempts: number, now: number, policy: BackoffPolicy, random: () => number): Verdict {
  if (!isTransient(err)) return { dead: true };
  const asked = err instanceof MasterUnavailableError ? (err.retryAfterMs ?? 0) : 0;
  return { retryAt: now + Math.max(asked, backoffDelay(attempts, policy, random)) };
}
