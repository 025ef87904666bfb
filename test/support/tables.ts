import { MasterUnavailableError, MemoryTable, type Id, type PageRequest, type Row, type TableLike, type WriteOptions } from '../../src/index.js';

/** A real MemoryTable that also records every call, and can be switched to fail like an unreachable master. */
export class ObservedTable implements TableLike {
  readonly calls: string[] = [];
  /** When set, every call fails with this error instead of reaching the table. */
  failWith: Error | undefined;
  /** The next calls fail with these errors, one each, before any reaches the table. */
  failNext: Error[] = [];

  constructor(readonly table: MemoryTable) {}

  get name() {
    return this.table.name;
  }
  get idField() {
    return this.table.idField;
  }
  goOffline() {
    this.failWith = new MasterUnavailableError('the master is down (test)');
  }

  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    this.calls.push(what);
    if (this.failWith) throw this.failWith;
    const scripted = this.failNext.shift();
    if (scripted) throw scripted;
    return fn();
  }
  list(req?: PageRequest) {
    return this.call(`list ${req ? `${req.page}/${req.ipp}` : 'all'}`, () => this.table.list(req));
  }
  get(id: Id) {
    return this.call(`get ${id}`, () => this.table.get(id));
  }
  insert(id: Id, row: Row, opts?: WriteOptions) {
    return this.call(`insert ${id}`, () => this.table.insert(id, row, opts));
  }
  insertReturnId(row: Row, opts?: WriteOptions) {
    return this.call('insertReturnId', () => this.table.insertReturnId(row, opts));
  }
  replace(id: Id, row: Row, opts?: WriteOptions) {
    return this.call(`replace ${id}`, () => this.table.replace(id, row, opts));
  }
  patch(id: Id, partial: Row, opts?: WriteOptions) {
    return this.call(`patch ${id}`, () => this.table.patch(id, partial, opts));
  }
  delete(id: Id, opts?: WriteOptions) {
    return this.call(`delete ${id}`, () => this.table.delete(id, opts));
  }
  deleteAll(opts?: WriteOptions) {
    return this.call('deleteAll', () => this.table.deleteAll(opts));
  }
}

export const products = (): Array<[Id, Row]> => [
  ['a', { id: 'a', name: 'Apple Pie', price: 12 }],
  ['b', { id: 'b', name: 'Brioche', price: 8 }],
  ['c', { id: 'c', name: 'Cinnamon Roll', price: 15 }],
];

/** A master with the sample products, recording calls. */
export function productsMaster(): ObservedTable {
  return new ObservedTable(new MemoryTable('products', products()));
}
