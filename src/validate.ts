import { InvalidInputError } from './errors.js';
import { idProblem } from './ids.js';
import type { Id, Row } from './types.js';

/** The largest row a write may carry, as JSON. Masters commonly refuse bodies over 1 MiB. */
export const MAX_ROW_BYTES = 512 * 1024;

/** Refuse an id that breaks the id rule (src/ids.ts, docs/protocol.md) before anything is queued or sent. */
export function checkId(id: unknown): asserts id is Id {
  const problem = idProblem(id);
  if (problem) throw new InvalidInputError(`Invalid id ${JSON.stringify(id)}: ${problem}`);
}

/** Refuse a row that would not survive JSON unchanged, or that is over the size limit. */
export function checkRow(row: unknown, idField: string, id?: Id): asserts row is Row {
  if (!isPlainObject(row)) throw new InvalidInputError(`A row must be a plain object, got ${describe(row)}`);
  const problem = jsonProblem(row, '', new Set());
  if (problem) throw new InvalidInputError(`The row is not JSON-compatible: ${problem}`);
  const given = row[idField];
  if (id !== undefined && given !== undefined && given !== id) {
    throw new InvalidInputError(`The row's ${idField} ${JSON.stringify(given)} contradicts the id ${JSON.stringify(id)}`);
  }
  const bytes = new TextEncoder().encode(JSON.stringify(row)).length;
  if (bytes > MAX_ROW_BYTES) throw new InvalidInputError(`The row is ${bytes} bytes as JSON; the limit is ${MAX_ROW_BYTES}`);
}

function jsonProblem(value: unknown, path: string, seen: Set<object>): string | undefined {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return undefined;
    case 'number':
      return Number.isFinite(value) ? undefined : `${path || 'value'} is ${value}`;
    case 'object': {
      if (value === null) return undefined;
      if (seen.has(value)) return `${path} refers back to itself`;
      if (!Array.isArray(value) && !isPlainObject(value)) return `${path} is ${describe(value)}`;
      seen.add(value);
      for (const [key, item] of Object.entries(value)) {
        const problem = jsonProblem(item, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, seen);
        if (problem) return problem;
      }
      seen.delete(value);
      return undefined;
    }
    default:
      return `${path || 'value'} is ${describe(value)}`;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'object') return `a ${value.constructor?.name ?? 'object'}`;
  return `a ${typeof value}`;
}
