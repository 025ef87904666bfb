import { createHash } from 'node:crypto';
import { HttpError } from './errors.js';
import type { Applied, KeyedWrite, KeyRecord, Owner, StoredResponse } from './storage/types.js';
import type { Row } from './validate.js';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Answers up to this size are kept whole with their key, so a replay returns
 * exactly what the first call did. Larger ones keep only the row id and a
 * replay re-reads the row: a 2-byte PATCH of a 1 MB row must not store 1 MB.
 */
export const MAX_KEPT_BODY_BYTES = 1024;

export type { KeyedWrite };

/** A request's Idempotency-Key (its header, or a batch op's `key`), if it sent one; 400 when it is malformed. */
export function idempotencyKey(key: string | string[] | undefined): string | undefined {
  if (key === undefined) return undefined;
  if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) {
    throw new HttpError(400, 'invalid_idempotency_key', 'Idempotency-Key must be 1 to 255 visible ASCII characters');
  }
  return key;
}

/**
 * Over the decoded route and the parsed body, so two spellings of the same
 * request (`%61` for `a`, other whitespace) are the same request.
 */
export function fingerprint(method: string, table: string, id: string | undefined, body: unknown): string {
  return createHash('sha256').update(JSON.stringify([method, table, id ?? null, body])).digest('base64url');
}

/** What to keep for a key whose write was just applied. */
export function keyRecord(keyed: KeyedWrite, owner: Owner, table: string, applied: Applied): KeyRecord {
  const json = applied.body === null ? null : JSON.stringify(applied.body);
  const small = json !== null && Buffer.byteLength(json) <= MAX_KEPT_BODY_BYTES;
  return {
    ...keyed,
    owner,
    status: applied.status,
    table,
    rowId: applied.body?.id ?? null,
    body: small ? json : null,
  };
}

/** The row a replay of `record` must re-read (its answer was too large to keep), if any. */
export const rowToReread = (record: KeyRecord): string | undefined =>
  record.body === null && record.rowId !== null ? record.rowId : undefined;

/**
 * The answer to a repeated request: the kept answer, or for a large row the
 * row as it is now (`row`, read by `rowToReread`; only `{id}` if it was
 * deleted since): the same status and row id as the first call, which is what
 * a retrying client needs.
 */
export function replayedResponse(record: KeyRecord, row: Row | undefined): StoredResponse {
  if (record.body !== null) return { status: record.status, body: JSON.parse(record.body) };
  if (record.rowId === null) return { status: record.status, body: null };
  return { status: record.status, body: row ?? { id: record.rowId } };
}
