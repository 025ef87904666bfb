import type { ErrorInfo } from '../errors.js';
import type { Id, Row } from '../types.js';

export type OpKind = 'insert' | 'insertReturnId' | 'replace' | 'patch' | 'delete' | 'deleteAll';

/** A write as the caller asked for it, before the queue has seen it. */
export interface NewOp {
  /** Unique per op; a write repeated with the same opId is queued once. */
  opId: string;
  /** The master table the op is for; order is kept per table (W2). */
  table: string;
  kind: OpKind;
  /** The row id, for every kind but insertReturnId and deleteAll. */
  id?: Id;
  /** The row, or the partial row of a patch. */
  row?: Row;
  /** Made once when the op is queued and sent with every attempt (W3). */
  idempotencyKey: string;
  enqueuedAt: number;
}

/** An op the queue holds: waiting, being sent, or refused by the master for good. */
export interface QueuedOp extends NewOp {
  status: 'queued' | 'in-flight' | 'dead';
  /** Queue position: ops of a table are sent in `seq` order. */
  seq: number;
  attempts: number;
  /** Epoch ms before which the op is not sent again (backoff). */
  nextAttemptAt: number;
  lastError?: ErrorInfo;
}

/** What the queue remembers of an op the master confirmed, so a late `waitFor` still gets its reply. */
export interface AppliedOp {
  status: 'applied';
  opId: string;
  table: string;
  kind: OpKind;
  id?: Id;
  result: unknown;
  appliedAt: number;
}

export type OpRecord = QueuedOp | AppliedOp;

/** The answer of `take`: an op to send now, or the time the table's head op is due. */
export type Take = { op: QueuedOp } | { retryAt: number };

/**
 * The contract of a durable write queue. Every method that changes the queue
 * resolves only once the change is durable. Only the flusher calls `take`,
 * `applied`, `retryLater` and `kill`.
 */
export interface WriteQueue {
  /** Queue an op. An opId the queue already knows is not queued again: its record is returned. */
  enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }>;
  /**
   * The table's head (its oldest op that is not dead). If it is due, it is
   * marked in-flight in the same step and returned; if not, when it will be.
   * Undefined when the table has nothing to send.
   */
  take(table: string, now: number): Promise<Take | undefined>;
  /** The master confirmed the op: remove it, keep its reply. */
  applied(opId: string, result: unknown, now: number): Promise<void>;
  /** A transient failure: back to queued, one more attempt counted, not sent before `nextAttemptAt`. */
  retryLater(opId: string, error: ErrorInfo, nextAttemptAt: number): Promise<void>;
  /** A permanent failure: the op becomes a dead letter and no longer blocks the table. */
  kill(opId: string, error: ErrorInfo): Promise<void>;
  /** A dead letter goes back to the queue at its old place, due now. */
  revive(opId: string, now: number): Promise<QueuedOp>;
  /** Remove a queued or dead op without applying it. An in-flight op cannot be discarded. */
  discard(opId: string): Promise<QueuedOp>;
  /** Ops the queue holds (queued, in-flight and dead), in queue order; one table's when given. */
  ops(table?: string): Promise<QueuedOp[]>;
  /** How many of a table's ops are pending (queued or in-flight) and dead; cheap enough to call after every change. */
  counts(table: string): Promise<{ pending: number; dead: number }>;
  /** The op's record, applied ones included while the queue still remembers them. */
  record(opId: string): Promise<OpRecord | undefined>;
}

/** How long, and how many, applied ops are remembered for late `waitFor` calls and repeated opIds. */
export const APPLIED_MEMORY = { ms: 24 * 60 * 60 * 1000, count: 10_000 };
