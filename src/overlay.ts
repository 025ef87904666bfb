import { opTarget, type QueuedOp } from './queue/types.js';
import type { Id, Row } from './types.js';

/**
 * Show pending writes on rows read from the cache or the master (R3): a
 * queued patch or replace changes its row, a delete hides it, a deleteAll
 * hides everything before it, and an insert shows at the top of page 1 (or of
 * a whole-table read). An insertReturnId has no id yet: its row shows under
 * its op id. Dead ops are not pending and change nothing.
 *
 * @param page the page read, or undefined for a whole-table read or a single row
 */
export function overlayPending(
  rows: Array<[Id, Row]>,
  ops: QueuedOp[],
  idField: string,
  page: number | undefined,
): Array<[Id, Row]> {
  let out = rows;
  const showsInserts = page === undefined || page === 1;
  for (const op of ops) {
    if (op.status === 'dead') continue;
    const id = opTarget(op)!;
    switch (op.kind) {
      case 'insert':
      case 'insertReturnId': {
        const row: Row = { ...op.row, [idField]: id };
        if (out.some(([rowId]) => rowId === id)) out = out.map((r) => (r[0] === id ? [id, row] : r));
        else if (showsInserts) out = [[id, row], ...out];
        break;
      }
      case 'replace':
        out = out.map((r) => (r[0] === id ? [id, { ...op.row, [idField]: id }] : r));
        break;
      case 'patch':
        out = out.map((r) => (r[0] === id ? [id, { ...r[1], ...op.row }] : r));
        break;
      case 'delete':
        out = out.filter(([rowId]) => rowId !== id);
        break;
      case 'deleteAll':
        out = [];
        break;
    }
  }
  return out;
}

/** The row ids that pending (not dead) ops will change; an insertReturnId counts under its op id. */
export function pendingIds(ops: QueuedOp[]): Id[] {
  const ids = new Set<Id>();
  for (const op of ops) {
    if (op.status === 'dead') continue;
    const id = opTarget(op);
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}
