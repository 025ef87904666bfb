import { InvalidInputError, MasterRejectedError } from '../errors.js';
import type { Id, PageRequest, Row, TableLike, WriteOptions } from '../types.js';

/**
 * An in-memory master: rows in insertion order, pagination, every write, and
 * idempotency keys honoured like a real server's. A real table for tests and
 * demos, not a mock.
 */
export class MemoryTable implements TableLike {
  private readonly rows = new Map<Id, Row>();
  private readonly replies = new Map<string, unknown>();
  private nextId = 1;

  /**
   * @param name the table's name, as a master would report it
   * @param rows initial rows, in order
   * @param idField the field of a row that holds its id
   */
  constructor(
    readonly name: string,
    rows: Iterable<[Id, Row]> = [],
    readonly idField = 'id',
  ) {
    for (const [id, row] of rows) this.rows.set(id, this.withId(id, row));
  }

  async list(req?: PageRequest): Promise<Array<[Id, Row]>> {
    const all = [...this.rows].map(([id, row]): [Id, Row] => [id, structuredClone(row)]);
    if (!req) return all;
    if (!(req.page >= 1 && req.ipp >= 1)) throw new InvalidInputError(`Bad page request ${JSON.stringify(req)}`);
    return all.slice((req.page - 1) * req.ipp, req.page * req.ipp);
  }

  async get(id: Id): Promise<Row | undefined> {
    const row = this.rows.get(id);
    return row && structuredClone(row);
  }

  /** How many rows the table holds. */
  get size(): number {
    return this.rows.size;
  }

  insert(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    return this.once(opts, () => {
      if (this.rows.has(id)) throw new MasterRejectedError(409, 'conflict', `A row with id "${id}" already exists`);
      return this.store(id, row);
    });
  }

  insertReturnId(row: Row, opts?: WriteOptions): Promise<Id> {
    return this.once(opts, () => {
      let id: Id;
      do id = String(this.nextId++);
      while (this.rows.has(id));
      this.store(id, row);
      return id;
    });
  }

  replace(id: Id, row: Row, opts?: WriteOptions): Promise<Row> {
    return this.once(opts, () => this.store(id, row));
  }

  patch(id: Id, partial: Row, opts?: WriteOptions): Promise<Row> {
    return this.once(opts, () => {
      const row = this.rows.get(id);
      if (!row) throw new MasterRejectedError(404, 'not_found', `No row with id "${id}"`);
      return this.store(id, { ...row, ...partial });
    });
  }

  // Deleting a row that is not there leaves the table as the caller wanted it: not an error.
  delete(id: Id, opts?: WriteOptions): Promise<void> {
    return this.once(opts, () => void this.rows.delete(id));
  }

  deleteAll(opts?: WriteOptions): Promise<void> {
    return this.once(opts, () => this.rows.clear());
  }

  private store(id: Id, row: Row): Row {
    const stored = this.withId(id, row);
    this.rows.set(id, stored);
    return structuredClone(stored);
  }

  private withId(id: Id, row: Row): Row {
    const given = row[this.idField];
    if (given !== undefined && given !== id) throw new MasterRejectedError(400, 'invalid_id', `Row id "${String(given)}" contradicts "${id}"`);
    return { ...structuredClone(row), [this.idField]: id };
  }

  // A write repeated with the same idempotency key returns the first reply and applies nothing.
  private async once<T>(opts: WriteOptions | undefined, write: () => T): Promise<T> {
    const key = opts?.idempotencyKey;
    if (key !== undefined && this.replies.has(key)) return structuredClone(this.replies.get(key)) as T;
    const reply = write();
    if (key !== undefined) this.replies.set(key, structuredClone(reply));
    return reply;
  }
}
