import type { Row } from './types.js';

/**
 * Every `code` a VantageError can carry: a closed set, safe to switch on.
 * Errors cross the bridge by code, so they keep their class in a minified build.
 */
export const VANTAGE_ERROR_CODES = [
  'master_rejected',
  'master_unavailable',
  'unexpected_response',
  'offline_miss',
  'invalid_input',
  'storage_full',
  'unknown_op',
  'dead_letter',
  'op_discarded',
  'op_applied',
  'op_failed',
  'in_flight',
  'outcome_unknown',
  'bridge_timeout',
  'protocol_mismatch',
  'no_service_worker',
  'unknown_table',
  'not_allowed',
  'no_web_locks',
  'sync_pending',
  'auth_required',
  'signed_out',
  'pending_writes',
  'conflict',
] as const;
export type VantageErrorCode = (typeof VANTAGE_ERROR_CODES)[number];

// Class names by code, written out: a minifier renames the classes themselves.
const CLASS_NAMES: Partial<Record<VantageErrorCode, string>> = {
  master_rejected: 'MasterRejectedError',
  master_unavailable: 'MasterUnavailableError',
  unexpected_response: 'UnexpectedResponseError',
  offline_miss: 'OfflineMissError',
  invalid_input: 'InvalidInputError',
  storage_full: 'StorageFullError',
  unknown_op: 'UnknownOpError',
  dead_letter: 'DeadLetterError',
  bridge_timeout: 'BridgeTimeoutError',
  protocol_mismatch: 'ProtocolMismatchError',
  no_service_worker: 'NoServiceWorkerError',
  auth_required: 'AuthRequiredError',
  conflict: 'ConflictError',
};

/** Every error vantage-live throws: `code` is stable and safe to switch on. */
export class VantageError extends Error {
  /** Worth retrying: the failure says nothing about the request itself. */
  readonly transient: boolean;
  /** The queued write this error is about, when there is one: follow it with `waitFor`, `retry` or `discard`. */
  opId?: string;
  constructor(
    readonly code: VantageErrorCode,
    message: string,
    opts: { transient?: boolean; cause?: unknown; opId?: string } = {},
  ) {
    super(message, { cause: opts.cause });
    this.name = CLASS_NAMES[code] ?? 'VantageError';
    this.transient = opts.transient ?? false;
    if (opts.opId !== undefined) this.opId = opts.opId;
  }
}

/** `err` marked as being about the queued op `opId` (errors that are not VantageErrors are wrapped in one). */
export function aboutOp(err: unknown, opId: string): VantageError {
  const about = err instanceof VantageError ? err : new VantageError('op_failed', err instanceof Error ? err.message : String(err), { cause: err });
  about.opId = opId;
  return about;
}

/**
 * The queue gave up on a write without the master refusing it: too many failed
 * attempts, queued too long, or first sent longer ago than the master keeps
 * idempotency keys (its outcome is unknown). It is a dead letter: retry or discard it.
 */
export class DeadLetterError extends VantageError {
  constructor(
    opId: string,
    readonly reason: 'gave_up' | 'expired' | 'outcome_unknown',
    detail: string,
  ) {
    super('dead_letter', `Op ${opId} is a dead letter (${reason}): ${detail}. Retry it with retry("${opId}") or drop it with discard("${opId}")`, { opId });
  }
}

/**
 * The master answered a request with something that is not the protocol's
 * answer: a redirect (an auth proxy's login page) or a success that is not
 * JSON. A write answered so is never counted as applied.
 */
export class UnexpectedResponseError extends VantageError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super('unexpected_response', message);
  }
}

/** The master answered and refused the request (a 4xx other than 408 and 429). Retrying will not help. */
export class MasterRejectedError extends VantageError {
  constructor(
    readonly status: number,
    readonly masterCode: string,
    message: string,
  ) {
    super('master_rejected', message);
  }
}

/** The master could not be reached or is overloaded (network error, 408, 429, 5xx). Worth a retry. */
export class MasterUnavailableError extends VantageError {
  constructor(
    message: string,
    readonly status?: number,
    /** How long the master asked us to wait (from `Retry-After`), in ms. */
    readonly retryAfterMs?: number,
    cause?: unknown,
  ) {
    super('master_unavailable', message, { transient: true, cause });
  }
}

/** A read found nothing in the cache while the master was unreachable. */
export class OfflineMissError extends VantageError {
  constructor(readonly cacheKey: string, cause?: unknown) {
    super('offline_miss', `"${cacheKey}" is not cached and the master cannot be reached`, { cause });
  }
}

/** A request was refused before anything was queued or sent: the input itself is wrong. */
export class InvalidInputError extends VantageError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/** The browser refused to store more (QuotaExceededError). Nothing was written. */
export class StorageFullError extends VantageError {
  constructor(cause?: unknown) {
    super('storage_full', 'Storage is full: free space or ask the user to allow more (navigator.storage.persist)', { cause });
  }
}

/**
 * A failed IndexedDB write as the caller should see it: a full disk becomes a
 * StorageFullError whether it arrives as a QuotaExceededError or as the abort
 * of the transaction it killed.
 */
export function storageError(err: unknown): unknown {
  const name = (err as { name?: string } | null)?.name;
  const inner = (err as { target?: { error?: { name?: string } } } | null)?.target?.error?.name;
  return name === 'QuotaExceededError' || inner === 'QuotaExceededError' ? new StorageFullError(err) : err;
}

/** An op id that is not (or no longer) in the queue. */
export class UnknownOpError extends VantageError {
  constructor(opId: string) {
    super('unknown_op', `No queued, dead, applied or discarded op with id "${opId}"`, { opId });
  }
}

/**
 * Whether a failure is worth a retry: a status of 408, 429 or 5xx, or an error
 * that says `transient: true` (RestTable's network errors do). Anything else,
 * a TypeError from a bug in a write target included, is permanent.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof VantageError) return err.transient;
  if (typeof err === 'object' && err !== null) {
    const { transient, status } = err as { transient?: unknown; status?: unknown };
    if (transient === true) return true;
    if (typeof status === 'number') return status === 408 || status === 429 || status >= 500;
  }
  return false;
}

/** The JSON-safe shape of an error, as kept on a dead op and sent across the bridge. */
export interface ErrorInfo {
  code: string;
  message: string;
  status?: number;
  /** A conflict: the master's current row (null when it was deleted). */
  theirs?: Row | null;
}

/**
 * The master refused a write because its row changed since the version the
 * write was made against (412 to `If-Match`). `theirs` is the master's row
 * now, with its version; null when the row is gone. What happens next is the
 * table's conflict policy (README, "Conflicts").
 */
export class ConflictError extends VantageError {
  readonly status = 412;
  constructor(
    readonly theirs: Row | null,
    message: string,
    opId?: string,
  ) {
    super('conflict', message, { opId });
  }
}

export function errorInfo(err: unknown): ErrorInfo {
  if (err instanceof ConflictError) return { code: err.code, message: err.message, status: err.status, theirs: err.theirs };
  if (err instanceof MasterRejectedError) return { code: err.masterCode, message: err.message, status: err.status };
  if (err instanceof UnexpectedResponseError || err instanceof AuthRequiredError) return { code: err.code, message: err.message, status: err.status };
  if (err instanceof MasterUnavailableError) return { code: err.code, message: err.message, status: err.status };
  if (err instanceof VantageError) return { code: err.code, message: err.message };
  if (err instanceof Error) return { code: err.name, message: err.message };
  return { code: 'unknown', message: String(err) };
}

/**
 * The master wants credentials: a 401 (or another status the app names, e.g.
 * 419), or a redirect to a sign-in page. A table that meets it pauses its
 * writes (`auth-required`) instead of dead-lettering them; new credentials
 * resume the flush.
 */
export class AuthRequiredError extends VantageError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super('auth_required', message);
  }
}

/** A call to the service worker got no answer in time. A write made by it may still be queued: its `opId` says which op to follow with `waitFor`. */
export class BridgeTimeoutError extends VantageError {
  constructor(readonly method: string, readonly ms: number, opId?: string) {
    const queued = opId === undefined ? '' : `; the write may be queued as op ${opId}: follow it with waitFor("${opId}"), and send it again only with the same opId (it is then queued once)`;
    super('bridge_timeout', `The service worker did not answer "${method}" within ${ms} ms${queued}`, { transient: true, opId });
  }
}

/** The page and the service worker speak different bridge protocol versions: reload the page to update it. */
export class ProtocolMismatchError extends VantageError {
  constructor(readonly pageVersion: number, readonly workerVersion: number) {
    super('protocol_mismatch', `This page speaks bridge protocol ${pageVersion} but the service worker speaks ${workerVersion}: reload the page to update`);
  }
}

/** The page has no service worker to talk to (unsupported, blocked, or not registered). */
export class NoServiceWorkerError extends VantageError {
  constructor(reason: string) {
    super('no_service_worker', `No service worker to talk to: ${reason}`);
  }
}
