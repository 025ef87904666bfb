/**
 * The outside world the library depends on: time, randomness and whether the
 * network is there. Passed in, so tests drive them without sleeping.
 */
export interface Env {
  now(): number;
  random(): number;
  /** A new unique id (op ids, idempotency keys). */
  newId(): string;
  /** Run `fn` after `ms`; returns a cancel function. */
  setTimer(fn: () => void, ms: number): () => void;
  /** False only when the platform is sure there is no network. */
  isOnline(): boolean;
}

export const defaultEnv: Env = {
  now: () => Date.now(),
  random: () => Math.random(),
  newId: () => crypto.randomUUID(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms);
    return () => clearTimeout(handle);
  },
  isOnline: () => (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine !== false,
};
