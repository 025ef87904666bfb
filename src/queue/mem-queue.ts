import { UnknownOpError, VantageError, type ErrorInfo } from '../errors.js';
import { APPLIED_MEMORY, type AppliedOp, type NewOp, type OpRecord, type QueuedOp, type Take, type WriteQueue } from './types.js';

/** A WriteQueue in memory: the contract without durability, for tests and Node apps that accept losing queued writes on exit. */
export class MemQueue implements WriteQueue {
  private readonly queued = new Map<string, QueuedOp>();
  private readonly done = new Map<string, AppliedOp>();
  private seq = 0;

  async enqueue(op: NewOp): Promise<{ record: OpRecord; created: boolean }> {
    const known = this.queued.get(op.opId) ?? this.done.get(op.opId);
    if (known) return { record: structuredClone(known), created: false };
    const record: QueuedOp = { ...structuredClone(op), status: 'queued', seq: ++this.seq, attempts: 0, nextAttemptAt: 0 };
    this.queued.set(op.opId, record);
    return { record: structuredClone(record), created: true };
  }

  async take(table: string, now: number): Promise<Take | undefined> {
    for (const op of this.queued.values()) {
      if (op.table !== table || op.status === 'dead') continue;
      if (op.nextAttemptAt > now) return { retryAt: op.nextAttemptAt };
      op.status = 'in-flight';
      return { op: structuredClone(op) };
    }
    return undefined;
  }

  async applied(opId: string, result: unknown, now: number): Promise<void> {
    const op = this.must(opId);
    this.queued.delete(opId);
    this.done.set(opId, { status: 'applied', opId, table: op.table, kind: op.kind, id: op.id, result: structuredClone(result), appliedAt: now });
    for (const [id, rec] of this.done) {
      if (this.done.size <= APPLIED_MEMORY.count && rec.appliedAt >= now - APPLIED_MEMORY.ms) break;
      this.done.delete(id);
    }
  }

  async retryLater(opId: string, error: ErrorInfo, nextAttemptAt: number): Promise<void> {
    Object.assign(this.must(opId), { status: 'queued', attempts: this.must(opId).attempts + 1, lastError: error, nextAttemptAt });
  }

  async kill(opId: string, error: ErrorInfo): Promise<void> {
    Object.assign(this.must(opId), { status: 'dead', attempts: this.must(opId).attempts + 1, lastError: error });
  }

  async revive(opId: string, now: number): Promise<QueuedOp> {
    const op = this.must(opId);
    if (op.status !== 'dead') throw new VantageError('not_dead', `Op "${opId}" is ${op.status}, not a dead letter`);
    Object.assign(op, { status: 'queued', nextAttemptAt: now });
    return structuredClone(op);
  }

  async discard(opId: string): Promise<QueuedOp> {
    const op = this.must(opId);
    if (op.status === 'in-flight') throw new VantageError('in_flight', `Op "${opId}" is being sent and cannot be discarded`);
    this.queued.delete(opId);
    return structuredClone(op);
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

  private must(opId: string): QueuedOp {
    const op = this.queued.get(opId);
    if (!op) throw new UnknownOpError(opId);
    return op;
  }
}
