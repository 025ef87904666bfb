import { UnknownOpError, VantageError, type ErrorInfo } from '../errors.js';
import {
  type Amend,
  type AppliedItem,
  APPLIED_MEMORY,
  joinsBatch,
  blockedOps,
  deadLetterWalk,
  opTarget,
  rewriteId,
  type DeathReason,
  type DoneOp,
  type IdRewrite,
  type NewOp,
  type OpRecord,
  type QueuedOp,
  type Take,
  type WriteQueue,
} from './types.js';

/** A WriteQueue in memory: the contract without durability, for tests and Node apps that accept losing queued writes on exit. */
export class MemQueue implements WriteQueue {
  readonly kind = 'MemQueue';
  // Map iteration follows insertion, and every (re)insertion takes a new seq, so iteration is queue order.
  private readonly queued = new Map<string, QueuedOp>();
  private readonly done = new Map<string, DoneOp>();
  private seq = 0;

  async enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }> {
    const known = this.queued.get(op.opId) ?? this.done.get(op.opId);
    if (known) return { record: structuredClone(known), created: false };
    const record: QueuedOp = { ...structuredClone(op), status: 'queued', seq: ++this.seq, attempts: 0, nextAttemptAt: 0 };
    this.queued.set(op.opId, record);
    return { record: structuredClone(record), created: true };
  }

  async take(table: string, now: number, max = 1): Promise<Take | undefined> {
    const waitsBehind = deadLetterWalk();
    const taken: QueuedOp[] = [];
    for (const op of this.queued.values()) {
      if (op.table !== table || waitsBehind(op) !== undefined) continue;
      if (taken.length > 0 && (op.nextAttemptAt > now || !joinsBatch(taken, op))) break;
      if (op.nextAttemptAt > now) return { retryAt: op.nextAttemptAt };
      Object.assign(op, { status: 'in-flight', firstSentAt: op.firstSentAt ?? now });
      taken.push(structuredClone(op));
      if (taken.length >= max) break;
    }
    return taken.length === 0 ? undefined : max > 1 ? { op: taken[0]!, ops: taken } : { op: taken[0]! };
  }

  async appliedMany(items: AppliedItem[], now: number): Promise<void> {
    for (const item of items) this.must(item.opId);
    for (const { opId, result, rewrite } of items) await this.applied(opId, result, now, rewrite);
  }

  async applied(opId: string, result: unknown, now: number, rewrite?: IdRewrite): Promise<void> {
    const op = this.must(opId);
    this.queued.delete(opId);
    if (rewrite) for (const [id, other] of this.queued) if (other.table === op.table) this.queued.set(id, rewriteId(other, rewrite));
    this.remember({ status: 'applied', opId, table: op.table, kind: op.kind, id: opTarget(op), result: structuredClone(result), appliedAt: now });
  }

  async retryLater(opId: string, error: ErrorInfo, nextAttemptAt: number, answered = false): Promise<void> {
    const op = this.must(opId);
    Object.assign(op, { status: 'queued', attempts: op.attempts + 1, lastError: error, nextAttemptAt });
    if (answered) op.answeredFailures = (op.answeredFailures ?? 0) + 1;
  }

  async kill(opId: string, error: ErrorInfo, now: number, reason: DeathReason = 'rejected'): Promise<void> {
    const op = this.must(opId);
    Object.assign(op, { status: 'dead', attempts: op.attempts + 1, lastError: error, deadReason: reason, diedAt: now });
  }

  async revive(opId: string, now: number, amend?: Amend): Promise<{ op: OpRecord; revived: boolean; overtaken: number }> {
    const op = this.queued.get(opId);
    if (!op || op.status !== 'dead') return { op: this.mustRecord(opId), revived: false, overtaken: 0 };
    const ops = [...this.queued.values()].filter((o) => o.table === op.table);
    const followers = [...blockedOps(ops)].filter(([, by]) => by === opId).map(([id]) => this.queued.get(id)!);
    for (const moved of [op, ...followers]) {
      this.queued.delete(moved.opId);
      this.queued.set(moved.opId, moved);
      moved.seq = ++this.seq;
    }
    Object.assign(op, amend, { status: 'queued', nextAttemptAt: now, deadReason: undefined });
    const target = opTarget(op);
    let overtaken = 0;
    for (const rec of this.done.values()) {
      if (rec.status === 'applied' && rec.table === op.table && rec.appliedAt >= (op.diedAt ?? 0) && (rec.kind === 'deleteAll' || rec.id === target)) overtaken++;
    }
    return { op: structuredClone(op), revived: true, overtaken };
  }

  async discard(opId: string, now: number): Promise<OpRecord> {
    const op = this.queued.get(opId);
    if (!op) return this.mustRecord(opId);
    if (op.status === 'in-flight') throw new VantageError('in_flight', `Op "${opId}" is being sent and cannot be discarded`);
    this.queued.delete(opId);
    const record: DoneOp = { status: 'discarded', opId, table: op.table, kind: op.kind, id: opTarget(op), appliedAt: now };
    this.remember(record);
    return structuredClone(record);
  }

  async ops(table?: string): Promise<QueuedOp[]> {
    return [...this.queued.values()].filter((op) => table === undefined || op.table === table).map((op) => structuredClone(op));
  }

  async counts(table: string): Promise<{ pending: number; dead: number }> {
    let pending = 0;
    let dead = 0;
    for (const op of this.queued.values()) if (op.table === table) op.status === 'dead' ? dead++ : pending++;
    return { pending, dead };
  }

  async record(opId: string): Promise<OpRecord | undefined> {
    const rec = this.queued.get(opId) ?? this.done.get(opId);
    return rec && structuredClone(rec);
  }

  private remember(record: DoneOp): void {
    this.done.set(record.opId, record);
    for (const [id, rec] of this.done) {
      if (this.done.size <= APPLIED_MEMORY.count && rec.appliedAt >= record.appliedAt - APPLIED_MEMORY.ms) break;
      this.done.delete(id);
    }
  }

  private must(opId: string): QueuedOp {
    const op = this.queued.get(opId);
    if (!op) throw new UnknownOpError(opId);
    return op;
  }

  private mustRecord(opId: string): OpRecord {
    const rec = this.queued.get(opId) ?? this.done.get(opId);
    if (!rec) throw new UnknownOpError(opId);
    return structuredClone(rec);
  }
}
