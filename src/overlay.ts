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

/**
 * Show the master's row where a write met a newer version and waits for the
 * app (a dead letter of reason "conflict"): the row the conflict brought back,
 * or no row when the master's was deleted. Rows read later than the conflict
 * are newer still and are kept.
 */
export function overlayConflicts(rows: Array<[Id, Row]>, conflicts: QueuedOp[]): Array<[Id, Row]> {
  let out = rows;
  for (const op of conflicts) {
    const id = opTarget(op);
    const theirs = op.lastError?.theirs;
    if (id === undefined || theirs === undefined) continue;
    out = theirs === null ? out.filter(([rowId]) => rowId !== id) : out.map((r) => (r[0] === id && !newer(r[1], theirs) ? [id, theirs] : r));
  }
  return out;
}

// Versions the reference master hands out grow; other masters' may not, and then the conflict's row is shown.
function newer(row: Row, than: Row): boolean {
  const [a, b] = [row._version, than._version];
  return typeof a === 'number' && typeof b === 'number' && a > b;
}
