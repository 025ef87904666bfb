import type { ErrorInfo } from '../errors.js';
import type { Id, Row } from '../types.js';

/**
 * The version of the row a write was made against, for its `If-Match`: the
 * row as the cache had it (`version`, and the row itself as the base of a
 * merge), or, when an earlier write to the same row was still queued, that
 * op (`afterOp`): the version it gets from the master once applied.
 */
export type OpBase = { version: Version; row: Row } | { afterOp: string };

/** A row's version as the master sends it (its `_version` field, docs/protocol.md). */
export type Version = string | number;

/** What a write does, by kind: only the fields each kind has. A write to an existing row may carry its `base`. */
export type OpBody =
  | { kind: 'insert'; id: Id; row: Row }
  | { kind: 'insertReturnId'; row: Row }
  | { kind: 'replace'; id: Id; row: Row; base?: OpBase }
  | { kind: 'patch'; id: Id; row: Row; base?: OpBase }
  | { kind: 'delete'; id: Id; base?: OpBase }
  | { kind: 'deleteAll' };

/** A dead conflict turned into what the app chose: the op's body becomes this, against the master's version. */
export type Amend = { kind: 'replace'; row: Row; base?: OpBase } | { base?: OpBase };

export type OpKind = OpBody['kind'];

/** What every op carries besides its body. */
export interface OpHeader {
  /** Unique per op; a write repeated with the same opId is queued once. */
  opId: string;
  /** The master table the op is for; order is kept per table (W2). */
  table: string;
  /** Made once when the op is queued and sent with every attempt (W3). */
  idempotencyKey: string;
  enqueuedAt: number;
}

/** A write as the caller asked for it, before the queue has seen it. */
export type NewOp = OpHeader & OpBody;

/** Why an op became a dead letter, besides the master refusing it. */
export type DeathReason = 'rejected' | 'gave_up' | 'expired' | 'outcome_unknown' | 'conflict';

/** The queue's bookkeeping of an op it holds. */
export interface OpState {
  status: 'queued' | 'in-flight' | 'dead';
  /** Queue position: ops of a table are sent in `seq` order. */
  seq: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Failed attempts the master answered (5xx, 408, 429): what `maxAttempts` counts; network errors do not. */
  answeredFailures?: number;
  /** Epoch ms before which the op is not sent again (backoff). */
  nextAttemptAt: number;
  /** Epoch ms of the first attempt: past the master's idempotency window, a resend is no longer safe for every kind. */
  firstSentAt?: number;
  lastError?: ErrorInfo;
  /** Dead letters: why, and since when. */
  deadReason?: DeathReason;
  diedAt?: number;
}

/** An op the queue holds: waiting, being sent, or a dead letter. */
export type QueuedOp = NewOp & OpState;

/** What the queue remembers of an op that left it, so a late `waitFor` or a repeated opId or control call gets the same answer. */
export interface DoneOp {
  status: 'applied' | 'discarded';
  opId: string;
  table: string;
  kind: OpKind;
  /** The row the op touched (its temporary id for an insertReturnId). */
  id?: Id;
  /** The master's reply (applied ops). */
  result?: unknown;
  appliedAt: number;
}
/** @deprecated the name of `DoneOp` before discarded ops were remembered too. */
export type AppliedOp = DoneOp;

export type OpRecord = QueuedOp | DoneOp;

/**
 * The answer of `take`: an op to send now (with `ops`, the batch it heads, when
 * more than one was asked for), or the time the table's head op is due.
 */
export type Take = { op: QueuedOp; ops?: QueuedOp[] } | { retryAt: number };

/** One applied op of a batch, as `appliedMany` settles it. */
export interface AppliedItem {
  opId: string;
  result: unknown;
  rewrite?: IdRewrite;
  /** The op's seq as it was taken, if known: the queue then finds it by its key, not by a lookup of its opId. */
  seq?: number;
}

/** An insertReturnId's temporary id and the master's id for the row, rewritten in the ops that followed it. */
export interface IdRewrite {
  from: Id;
  to: Id;
}

/**
 * The contract of a durable write queue. Every method that changes the queue
 * resolves only once the change is durable. Only the flusher calls `take`,
 * `applied`, `retryLater` and `kill`.
 */
export interface WriteQueue {
  /** What the queue is, for inspectors ("IdbQueue"); class names do not survive minification. */
  readonly kind?: string;
  /** Queue an op. An opId the queue already knows (queued, dead, applied or discarded) is not queued again: its record is returned. */
  enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }>;
  /**
   * The table's next op to send: the oldest that is not dead and not blocked
   * (an op is blocked while an earlier op on the same row is dead). If it is
   * due, it is marked in-flight (and its first attempt time recorded) in the
   * same step and returned; if not, when it will be. Undefined when the table
   * has nothing to send. With `max` above 1, the ops due right after it that
   * may share its batch (`joinsBatch`) are taken with it, up to `max`.
   */
  take(table: string, now: number, max?: number): Promise<Take | undefined>;
  /** `applied` for several ops of one table, in order, in one step. */
  appliedMany(items: AppliedItem[], now: number): Promise<void>;
  /**
   * The master confirmed the op: remove it, keep its reply. With `rewrite`, the
   * table's later ops that name the temporary id are changed to the master's
   * id in the same transaction.
   */
  applied(opId: string, result: unknown, now: number, rewrite?: IdRewrite): Promise<void>;
  /** A transient failure: back to queued, one more attempt counted, not sent before `nextAttemptAt`. */
  retryLater(opId: string, error: ErrorInfo, nextAttemptAt: number, answered?: boolean): Promise<void>;
  /** A permanent failure, or one given up on: the op becomes a dead letter; later ops on its row wait with it. */
  kill(opId: string, error: ErrorInfo, now: number, reason?: DeathReason): Promise<void>;
  /**
   * A dead letter goes to the end of the queue, due now, with the ops that were
   * blocked behind it, in their order. `overtaken` counts ops on the same row
   * the master applied after the op died. An op that is already queued,
   * in-flight, applied or discarded is returned as it is, with `revived` false:
   * a repeated retry finds its work done. `amend` changes the op as it goes
   * (a conflict retried against the master's version, or resolved to a row).
   */
  revive(opId: string, now: number, amend?: Amend): Promise<{ op: OpRecord; revived: boolean; overtaken: number }>;
  /** Remove a queued or dead op without applying it; remembered as discarded. An in-flight op cannot be discarded. A discarded op is returned as it is. */
  discard(opId: string, now: number): Promise<OpRecord>;
  /** Ops the queue holds (queued, in-flight and dead), in queue order; one table's when given. */
  ops(table?: string): Promise<QueuedOp[]>;
  /** How many of a table's ops are pending (queued or in-flight) and dead; cheap enough to call after every change. */
  counts(table: string): Promise<{ pending: number; dead: number }>;
  /** The op's record, applied and discarded ones included while the queue still remembers them. */
  record(opId: string): Promise<OpRecord | undefined>;
}

/** How long, and how many, applied and discarded ops are remembered for late `waitFor` calls and repeated opIds. */
export const APPLIED_MEMORY = { ms: 24 * 60 * 60 * 1000, count: 10_000 };

/** The row an op touches: its id, an insertReturnId's temporary id (its opId), none for deleteAll. */
export function opTarget(op: NewOp): Id | undefined {
  switch (op.kind) {
    case 'insertReturnId':
      return op.opId;
    case 'deleteAll':
      return undefined;
    default:
      return op.id;
  }
}

/**
 * Walks one table's ops in queue order and tells, for each, the dead letter it
 * waits behind: an op is blocked while an earlier op on the same row is dead
 * (a dead op answers its own opId). One rule for every queue.
 */
export function deadLetterWalk(): (op: QueuedOp) => string | undefined {
  const deadRows = new Map<Id, string>();
  return (op) => {
    const target = opTarget(op);
    if (op.status === 'dead') {
      if (target !== undefined && !deadRows.has(target)) deadRows.set(target, op.opId);
      return op.opId;
    }
    return target === undefined ? undefined : deadRows.get(target);
  };
}

/** The ops of one table (in queue order) that wait behind a dead letter, by opId, with the dead op they wait for. */
export function blockedOps(ops: QueuedOp[]): Map<string, string> {
  const walk = deadLetterWalk();
  const blocked = new Map<string, string>();
  for (const op of ops) {
    const by = walk(op);
    if (by !== undefined && op.status !== 'dead') blocked.set(op.opId, by);
  }
  return blocked;
}

/**
 * Whether `op` may join a batch of `batch` (the ops taken before it, in
 * order): no two ops on one row (an op refused in a batch then never has a
 * later op on its row applied in the same request, and an op's base from an
 * earlier op is known before it is sent), no deleteAll, and nothing after an
 * insertReturnId (later ops may name its temporary id).
 */
export function joinsBatch(batch: QueuedOp[], op: QueuedOp): boolean {
  const target = opTarget(op);
  if (target === undefined) return false;
  return batch.every((taken) => taken.kind !== 'insertReturnId' && taken.kind !== 'deleteAll' && opTarget(taken) !== target);
}

/** Change a temporary id to the master's id in one queued op; the op itself when it does not name it. */
export function rewriteId(op: QueuedOp, { from, to }: IdRewrite): QueuedOp {
  return 'id' in op && op.id === from ? { ...op, id: to } : op;
}
