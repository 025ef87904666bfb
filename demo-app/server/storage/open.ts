import { SqliteStorage } from './sqlite.js';
import type { Storage, StorageOptions } from './types.js';

/** Where the master keeps its data: a SQLite file (the default) or a PostgreSQL database. */
export type StorageLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string };

/**
 * Opens (and creates the schema of) the master's storage. Postgres is loaded
 * only when asked for, so the embedded default needs no `pg` module.
 */
export async function openStorage(where: StorageLocation, opts: StorageOptions): Promise<Storage> {
  if (where.kind === 'sqlite') return new SqliteStorage(where.path, opts);
  const { PostgresStorage } = await import('./postgres.js');
  return PostgresStorage.open(where.url, opts);
}
