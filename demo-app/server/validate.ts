import { idProblem } from '../../src/ids.js';
import { HttpError } from './errors.js';

/** A JSON object as stored and returned: always carries its `id`. */
export type Row = Record<string, unknown> & { id: string };

const TABLE_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function isTableName(name: string): boolean {
  return TABLE_NAME.test(name);
}

export function assertTableName(name: string): void {
  if (!isTableName(name)) {
    throw new HttpError(400, 'invalid_table', `table name must match ${TABLE_NAME.source}`);
  }
}

/** Ids follow the protocol's one id rule (src/ids.ts), the same the client checks before queueing. */
export function assertRowId(value: unknown): asserts value is string {
  const problem = idProblem(value);
  if (problem !== undefined) throw new HttpError(400, 'invalid_id', problem);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The one business rule the master enforces. It exists so client tests have a
 * reliable way to provoke a permanent (non-retryable) rejection.
 */
export function assertValidRow(row: Record<string, unknown>): void {
  if (!('price' in row)) return;
  const { price } = row;
  if (typeof price !== 'number' || !Number.isFinite(price) || price < 0) {
    throw new HttpError(422, 'validation', 'price must be a non-negative number');
  }
}

/** A body id, if present, must name the same row as the URL. */
export function assertSameId(body: Record<string, unknown>, urlId: string): void {
  if (body.id !== undefined && body.id !== urlId) {
    throw new HttpError(400, 'id_mismatch', `body id ${JSON.stringify(body.id)} contradicts the URL id "${urlId}"`);
  }
}

/** Parses a positive integer query parameter, or returns `fallback` when it is absent. */
export function positiveIntParam(raw: string | null, name: string, fallback: number, max = Number.MAX_SAFE_INTEGER): number {
  if (raw === null) return fallback;
  const n = /^\d{1,15}$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new HttpError(400, 'invalid_query', `${name} must be an integer from 1 to ${max}`);
  }
  return n;
}
