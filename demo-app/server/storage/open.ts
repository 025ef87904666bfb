import { SqliteStorage } from './sqlite.js';
import type { Storage, StorageOptions } from './types.js';

/** Where the master keeps its data. */
export type StorageLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/** Opens (and creates the schema of) the master's storage. */
export async function openStorage(where: StorageLocation, opts: StorageOptions): Promise<Storage> {
  if (where.kind === 'sqlite') return new SqliteStorage(where.path, opts);
  throw new Error('Postgres storage is not built yet');
}
