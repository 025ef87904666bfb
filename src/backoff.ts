export interface BackoffPolicy {
  /** Delay scale of the first retry, in ms. */
  baseMs: number;
  /** No delay is ever longer than this, in ms. */
  capMs: number;
}

/**
 * Exponential backoff with full jitter: a uniform draw from
 * [0, min(cap, base * 2^attempt)). `attempt` counts from 0; `random` is in [0, 1).
 */
export function backoffDelay(attempt: number, policy: BackoffPolicy, random: () => number): number {
  const ceiling = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
