import type { ErrorInfo, QueuedOp } from '../../src/index.js';

/** "just now", "12 s ago", "3 min ago", "2 h ago". */
export function age(epochMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - epochMs) / 1000));
  if (s < 2) return 'just now';
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  return `${Math.round(s / 3600)} h ago`;
}

/** "in 3 s", "now", for a moment that is due. */
export function until(epochMs: number, now = Date.now()): string {
  const s = Math.ceil((epochMs - now) / 1000);
  return s <= 0 ? 'now' : `in ${s} s`;
}

/** Wall-clock time of day, to the second. */
export function clock(epochMs: number): string {
  return new Date(epochMs).toLocaleTimeString([], { hour12: false });
}

export function price(value: unknown): string {
  return typeof value === 'number' ? value.toFixed(2) : String(value ?? '');
}

/** What the master said, as a person reads it: "422 validation: price must be a non-negative number". */
export function reason(error: ErrorInfo | undefined): string {
  if (!error) return '';
  // RestTable prefixes the master's words with the request ("POST /api/products: 422 ..."); the status already says that much.
  const said = /^[A-Z]+ \S+: \d{3} (.*)$/s.exec(error.message)?.[1] ?? error.message;
  return [error.status, `${error.code}:`, said].filter((part) => part !== undefined).join(' ');
}

/** "insert d", "patch a", "insertReturnId (new row)", "deleteAll". */
export function opLabel(op: QueuedOp): string {
  if (op.kind === 'insertReturnId') return 'insert (new id)';
  return op.kind === 'deleteAll' ? op.kind : `${op.kind} ${op.id}`;
}

/** The row an op carries, compactly: `name: Donut, price: 5`. */
export function rowSummary(op: QueuedOp): string {
  const row = 'row' in op ? op.row : undefined;
  if (!row) return '';
  return Object.entries(row)
    .filter(([key]) => key !== 'id')
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(', ');
}
