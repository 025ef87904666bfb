import { openDB, type DBSchema, type IDBPDatabase, type OpenDBCallbacks } from 'idb';

/**
 * An IndexedDB connection opened on first use, and opened again on the next
 * use after it had to let go: a newer worker upgrading the schema, or a page
 * or a wipe deleting the database, sends `versionchange`, and a connection
 * that does not close blocks them forever. Callers never hold on to a
 * connection across calls; they ask for it each time.
 */
export class IdbConnection<S extends DBSchema> {
  private conn: Promise<IDBPDatabase<S>> | undefined;

  constructor(
    readonly name: string,
    private readonly version: number,
    private readonly upgrade: OpenDBCallbacks<S>['upgrade'],
  ) {}

  get(): Promise<IDBPDatabase<S>> {
    return (this.conn ??= openDB<S>(this.name, this.version, {
      upgrade: this.upgrade,
      blocking: () => void this.close(),
      terminated: () => void (this.conn = undefined),
    }));
  }

  /** Let go of the connection; the next `get` opens a new one. */
  async close(): Promise<void> {
    const conn = this.conn;
    this.conn = undefined;
    (await conn?.catch(() => undefined))?.close();
  }
}
