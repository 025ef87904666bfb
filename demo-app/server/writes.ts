import { randomUUID } from 'node:crypto';
import { HttpError } from './errors.js';
import type { ChangeKind, OwnedRows } from './store.js';
import { assertRowId, assertSameId, assertValidRow } from './validate.js';
import type { Row } from './validate.js';

/** What a write did: the response to send and the change to log. */
export interface Applied {
  status: number;
  body: Row | null;
  change: { kind: ChangeKind; id?: string };
}

// `id` goes first so stored JSON reads well; the URL's or assigned id always wins.
function withId(id: string, body: Record<string, unknown>): Row {
  const { id: _bodyId, ...rest } = body;
  return { id, ...rest };
}

// Each function below runs inside the write's transaction, so a throw leaves
// the store untouched. `store` is one owner's rows: another user's row with
// the same id is not there, so it reads as missing (404), never as forbidden.

export function createRow(store: OwnedRows, table: string, body: Record<string, unknown>): Applied {
  const id = body.id === undefined ? randomUUID() : body.id;
  assertRowId(id);
  const row = withId(id, body);
  assertValidRow(row);
  if (store.getRow(table, id) !== undefined) {
    throw new HttpError(409, 'conflict', `${table}/${id} already exists`);
  }
  store.insertRow(table, row);
  return { status: 201, body: row, change: { kind: 'inserted', id } };
}

export function putRow(store: OwnedRows, table: string, id: string, body: Record<string, unknown>): Applied {
  assertSameId(body, id);
  const row = withId(id, body);
  assertValidRow(row);
  if (store.getRow(table, id) === undefined) {
    store.insertRow(table, row);
    return { status: 200, body: row, change: { kind: 'inserted', id } };
  }
  store.updateRow(table, row);
  return { status: 200, body: row, change: { kind: 'updated', id } };
}

export function patchRow(store: OwnedRows, table: string, id: string, patch: Record<string, unknown>): Applied {
  assertSameId(patch, id);
  const existing = store.getRow(table, id);
  if (existing === undefined) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
  const row = withId(id, { ...existing, ...patch });
  assertValidRow(row);
  store.updateRow(table, row);
  return { status: 200, body: row, change: { kind: 'updated', id } };
}

export function deleteRow(store: OwnedRows, table: string, id: string): Applied {
  if (!store.deleteRow(table, id)) throw new HttpError(404, 'not_found', `${table}/${id} does not exist`);
  return { status: 204, body: null, change: { kind: 'deleted', id } };
}

export function clearTable(store: OwnedRows, table: string): Applied {
  store.clearTable(table);
  return { status: 204, body: null, change: { kind: 'changed' } };
}
