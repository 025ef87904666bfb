import { randomUUID } from 'node:crypto';
import { HttpError } from './errors.js';
import type { Write } from './storage/types.js';
import { assertRowId, assertSameId, assertValidRow } from './validate.js';
import type { Row } from './validate.js';
import { VERSION_FIELD } from './versions.js';

export type { Applied } from './storage/types.js';

// `id` goes first so stored JSON reads well; the URL's or assigned id always
// wins. The version is the master's, never the body's (versions.ts).
function withId(id: string, body: Record<string, unknown>): Row {
  const { id: _bodyId, [VERSION_FIELD]: _version, ...rest } = body;
  return { id, ...rest };
}

// Each `decide` below runs inside the write's transaction, on the row as the
// transaction sees it, so a throw leaves the store untouched. Rows are one
// owner's: another user's row with the same id is not there, so it reads as
// missing (404), never as forbidden.

export function createRow(table: string, body: Record<string, unknown>): Write {
  const id = body.id === undefined ? randomUUID() : body.id;
  return {
    table,
    id: typeof id === 'string' ? id : undefined,
    decide: (existing) => {
      assertRowId(id);
      const row = withId(id, body);
      assertValidRow(row);
      if (existing !== undefined) throw new HttpError(409, 'conflict', `${table}/${id} already exists`);
      return { status: 201, body: row, change: { kind: 'inserted', id } };
    },
  };
}

export function putRow(table: string, id: string, body: Record<string, unknown>): Write {
  return {
    table,
    id,
    decide: (existing) => {
      assertSameId(body, id);
      const row = withId(id, body);
      assertValidRow(row);
      return { status: 200, body: row, change: { kind: existing === undefined ? 'inserted' : 'updated', id } };
    },
  };
}

export function patchRow(table: string, id: string, patch: Record<string, unknown>): Write {
  return {
    table,
    id,
    decide: (existing) => {
      assertSameId(patch, id);
      if (existing === undefined) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
      const row = withId(id, { ...existing, ...patch });
      assertValidRow(row);
      return { status: 200, body: row, change: { kind: 'updated', id } };
    },
  };
}

export function deleteRow(table: string, id: string): Write {
  return {
    table,
    id,
    decide: (existing) => {
      if (existing === undefined) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
      return { status: 204, body: null, change: { kind: 'deleted', id } };
    },
  };
}

export function clearTable(table: string): Write {
  return { table, id: undefined, decide: () => ({ status: 204, body: null, change: { kind: 'changed' } }) };
}
