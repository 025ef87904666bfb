import { HttpError } from './errors.js';
import { isPlainObject } from './validate.js';

/** The fault-injection settings, as `GET /admin/chaos` reports them. */
export interface ChaosState {
  latencyMs: number;
  failNext: number;
  /** The injected failures are for writes only: reads (a UI refreshing its list) go through untouched. */
  failOnlyWrites: boolean;
  failStatus: number;
  retryAfterSec: number;
  dropAfterCommit: number;
  pauseFeed: boolean;
  /** Time left before new /api connections are accepted again. */
  refuseForMs: number;
}

/** An injected failure to answer instead of handling the request. */
export interface InjectedFailure {
  status: number;
  retryAfterSec: number;
}

const DEFAULT_FAIL_STATUS = 503;
const DEFAULT_RETRY_AFTER_SEC = 1;
const MAX_MS = 10 * 60_000;

function count(body: Record<string, unknown>, key: string, max: number): number | undefined {
  const value = body[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new HttpError(400, 'invalid_body', `${key} must be an integer from 0 to ${max}`);
  }
  return value;
}

const KNOWN_KEYS = new Set(['latencyMs', 'failNext', 'failOnlyWrites', 'failStatus', 'retryAfterSec', 'dropAfterCommit', 'pauseFeed', 'refuseForMs']);

/**
 * Fault injection for client tests. A server started without chaos keeps a
 * pristine instance, so every hook below is a no-op there.
 */
export class Chaos {
  private latencyMs = 0;
  private failNext = 0;
  private failOnlyWrites = false;
  private failStatus = DEFAULT_FAIL_STATUS;
  private retryAfterSec = DEFAULT_RETRY_AFTER_SEC;
  private dropAfterCommit = 0;
  private pauseFeed = false;
  private refuseUntil = 0;

  constructor(private readonly onPauseFeed: (paused: boolean) => void) {}

  /** Applies a `POST /admin/chaos` body; validates all of it before changing anything. */
  update(body: unknown, now = Date.now()): void {
    if (!isPlainObject(body)) throw new HttpError(400, 'invalid_body', 'expected a JSON object');
    for (const key of Object.keys(body)) {
      if (!KNOWN_KEYS.has(key)) throw new HttpError(400, 'invalid_body', `unknown chaos setting "${key}"`);
    }
    for (const key of ['pauseFeed', 'failOnlyWrites']) {
      if (body[key] !== undefined && typeof body[key] !== 'boolean') throw new HttpError(400, 'invalid_body', `${key} must be a boolean`);
    }
    const latencyMs = count(body, 'latencyMs', MAX_MS);
    const failNext = count(body, 'failNext', 1_000_000);
    const failStatus = count(body, 'failStatus', 599);
    if (failStatus !== undefined && failStatus < 400) {
      throw new HttpError(400, 'invalid_body', 'failStatus must be from 400 to 599');
    }
    const retryAfterSec = count(body, 'retryAfterSec', 3600);
    const dropAfterCommit = count(body, 'dropAfterCommit', 1_000_000);
    const refuseForMs = count(body, 'refuseForMs', MAX_MS);

    if (latencyMs !== undefined) this.latencyMs = latencyMs;
    if (failNext !== undefined) {
      this.failNext = failNext;
      this.failOnlyWrites = body.failOnlyWrites === true;
      this.failStatus = failStatus ?? DEFAULT_FAIL_STATUS;
      this.retryAfterSec = retryAfterSec ?? DEFAULT_RETRY_AFTER_SEC;
    } else {
      if (failStatus !== undefined) this.failStatus = failStatus;
      if (retryAfterSec !== undefined) this.retryAfterSec = retryAfterSec;
    }
    if (dropAfterCommit !== undefined) this.dropAfterCommit = dropAfterCommit;
    if (refuseForMs !== undefined) this.refuseUntil = refuseForMs === 0 ? 0 : now + refuseForMs;
    if (typeof body.pauseFeed === 'boolean') this.setPause(body.pauseFeed);
  }

  reset(): void {
    this.latencyMs = 0;
    this.failNext = 0;
    this.failOnlyWrites = false;
    this.failStatus = DEFAULT_FAIL_STATUS;
    this.retryAfterSec = DEFAULT_RETRY_AFTER_SEC;
    this.dropAfterCommit = 0;
    this.refuseUntil = 0;
    this.setPause(false);
  }

  state(now = Date.now()): ChaosState {
    return {
      latencyMs: this.latencyMs,
      failNext: this.failNext,
      failOnlyWrites: this.failOnlyWrites,
      failStatus: this.failStatus,
      retryAfterSec: this.retryAfterSec,
      dropAfterCommit: this.dropAfterCommit,
      pauseFeed: this.pauseFeed,
      refuseForMs: Math.max(0, this.refuseUntil - now),
    };
  }

  latency(): number {
    return this.latencyMs;
  }

  refusing(now = Date.now()): boolean {
    return now < this.refuseUntil;
  }

  /** Consumes one injected failure, if any are pending. */
  takeFailure(write: boolean): InjectedFailure | undefined {
    if (this.failNext === 0 || (this.failOnlyWrites && !write)) return undefined;
    this.failNext -= 1;
    return { status: this.failStatus, retryAfterSec: this.retryAfterSec };
  }

  /** Consumes one pending drop: the caller destroys the socket instead of answering. */
  takeDrop(): boolean {
    if (this.dropAfterCommit === 0) return false;
    this.dropAfterCommit -= 1;
    return true;
  }

  private setPause(paused: boolean): void {
    this.pauseFeed = paused;
    this.onPauseFeed(paused);
  }
}
