import { ConflictError } from './errors.js';
import type { OpBase, QueuedOp, Version, WriteQueue } from './queue/types.js';
import type { BatchWrite, Row, Settled, TableLike, WriteOptions } from './types.js';

/** Where a row carries its version, as the reference master sends it (docs/protocol.md, "Versions"). */
export const VERSION_FIELD = '_version';

/** A merge's answer: the row to send, or keep the master's row (`'server'`) or this write (`'client'`) as it is. */
export type MergeResult = Row | 'server' | 'client';

/**
 * Decides a conflict field by field or any other way. `base` is the row the
 * write was made against, `mine` the row the write wanted (null for a delete),
 * `theirs` the master's row now (null when it was deleted). Runs where the
 * queue is flushed (the service worker), so it must be a plain function.
 */
export type MergeFn = (base: Row, mine: Row | null, theirs: Row | null) => MergeResult;

/**
 * What a table does when a queued write meets a newer version of its row:
 * `server-wins` (the default) keeps the master's row and the write becomes a
 * dead letter of reason "conflict" holding both; `client-wins` sends the write
 * again once, without the version check; a merge function decides.
 */
export type ConflictPolicy = 'server-wins' | 'client-wins' | MergeFn;

/** The version of a row, if it carries one. */
export function versionOf(row: Row | null | undefined): Version | undefined {
  const v = row?.[VERSION_FIELD];
  return typeof v === 'string' || typeof v === 'number' ? v : undefined;
}

/** A base taken from a row as read (with its version), or none. */
export function baseFrom(row: Row | null | undefined): OpBase | undefined {
  const version = versionOf(row);
  return version === undefined || !row ? undefined : { version, row };
}

/**
 * The base an op is sent against: its own, or for an op queued behind an
 * earlier write to its row, the row that write got from the master. Undefined
 * (no version check, as before versions) when the earlier write's answer
 * carries no version or is no longer remembered.
 */
export async function resolveBase(op: QueuedOp, queue: WriteQueue): Promise<{ version: Version; row: Row } | undefined> {
  if (!('base' in op) || op.base === undefined) return undefined;
  if ('version' in op.base) return op.base;
  const earlier = await queue.record(op.base.afterOp);
  if (earlier?.status !== 'applied') return undefined;
  const row = earlier.result as Row | null | undefined;
  return baseFrom(typeof row === 'object' ? row : undefined) as { version: Version; row: Row } | undefined;
}

function mineOf(op: QueuedOp, base: Row, idField: string): Row | null {
  if (op.kind === 'patch') return { ...base, ...op.row, [idField]: op.id };
  if (op.kind === 'replace') return { ...op.row, [idField]: op.id };
  return null;
}

function send(target: TableLike, op: QueuedOp, opts: WriteOptions): Promise<unknown> {
  switch (op.kind) {
    case 'insert':
      return target.insert(op.id, op.row, opts);
    case 'insertReturnId':
      return target.insertReturnId(op.row, opts);
    case 'replace':
      return target.replace(op.id, op.row, opts);
    case 'patch':
      return target.patch(op.id, op.row, opts);
    case 'delete':
      return target.delete(op.id, opts);
    case 'deleteAll':
      return target.deleteAll(opts);
  }
}

/**
 * Sends one queued op with its idempotency key and, when its base is known,
 * its version as `If-Match`; a conflict then follows `policy`. A server-wins
 * conflict (or a merged row that meets yet another change) is thrown as the
 * ConflictError, and the queue makes the op a dead letter of reason
 * "conflict". The follow-up requests have keys of their own, derived from the
 * op's: a resend after a lost answer replays them instead of applying twice.
 */
export async function sendWithPolicy(target: TableLike, op: QueuedOp, base: { version: Version; row: Row } | undefined, policy: ConflictPolicy): Promise<unknown> {
  try {
    return await send(target, op, { idempotencyKey: op.idempotencyKey, ifMatch: base?.version });
  } catch (err) {
    return afterConflict(target, op, base, policy, err);
  }
}

/**
 * A batch of queued ops (`target.writeBatch`), each sent as `sendWithPolicy`
 * would send it: a conflict inside the batch follows `policy` with the same
 * follow-up requests, sent on their own. Undefined when the master takes no
 * batches.
 */
export async function sendBatchWithPolicy(
  target: TableLike,
  ops: Array<{ op: QueuedOp; base: { version: Version; row: Row } | undefined }>,
  policy: ConflictPolicy,
): Promise<Settled[] | undefined> {
  if (!target.writeBatch) return undefined;
  const writes = ops.map(({ op, base }) => batchWrite(op, { idempotencyKey: op.idempotencyKey, ifMatch: base?.version }));
  const settled = await target.writeBatch(writes);
  if (settled === undefined) return undefined;
  return Promise.all(
    settled.map(async (one, i): Promise<Settled> => {
      if (one.ok || !(one.error instanceof ConflictError)) return one;
      const { op, base } = ops[i]!;
      try {
        return { ok: true, value: await afterConflict(target, op, base, policy, one.error) };
      } catch (error) {
        return { ok: false, error };
      }
    }),
  );
}

function batchWrite(op: QueuedOp, opts: WriteOptions): BatchWrite {
  switch (op.kind) {
    case 'insertReturnId':
      return { kind: op.kind, row: op.row, opts };
    case 'delete':
      return { kind: op.kind, id: op.id, opts };
    case 'deleteAll':
      throw new Error('deleteAll is never batched');
    default:
      return { kind: op.kind, id: op.id, row: op.row, opts };
  }
}

// A write met `err`: a conflict it can settle by `policy` is settled, anything else is thrown on.
async function afterConflict(target: TableLike, op: QueuedOp, base: { version: Version; row: Row } | undefined, policy: ConflictPolicy, err: unknown): Promise<unknown> {
  if (!(err instanceof ConflictError) || base === undefined || policy === 'server-wins' || !('id' in op)) throw err;
  const key = op.idempotencyKey;
  const choice = policy === 'client-wins' ? 'client' : policy(base.row, mineOf(op, base.row, target.idField), err.theirs);
  if (choice === 'server') return err.theirs;
  if (choice === 'client') return send(target, op, { idempotencyKey: `${key}:client` });
  const { [VERSION_FIELD]: _v, [target.idField]: _id, ...merged } = choice;
  return target.replace(op.id, merged, { idempotencyKey: `${key}:merge`, ifMatch: versionOf(err.theirs) });
}

/**
 * The common merge: a field only one side changed takes that side's value; a
 * field both changed to different values takes `prefer`'s (the master's by
 * default). A delete on either side is not merged field by field: `prefer`
 * wins. The version field is the master's and is left out.
 */
export function mergeFields(opts: { prefer?: 'server' | 'client' } = {}): MergeFn {
  const prefer = opts.prefer ?? 'server';
  return (base, mine, theirs) => {
    if (mine === null || theirs === null) return prefer;
    const out: Row = {};
    for (const key of new Set([...Object.keys(base), ...Object.keys(mine), ...Object.keys(theirs)])) {
      if (key === VERSION_FIELD) continue;
      const mineChanged = !sameJson(mine[key], base[key]);
      const theirsChanged = !sameJson(theirs[key], base[key]);
      const from = mineChanged && (!theirsChanged || prefer === 'client') ? mine : theirs;
      if (key in from) out[key] = from[key];
    }
    return out;
  };
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k) => sameJson((a as Row)[k], (b as Row)[k]));
}
