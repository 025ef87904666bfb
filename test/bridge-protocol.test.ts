import { describe, expect, it } from 'vitest';
import { fromWireError, toWireError } from '../src/bridge/protocol.js';
import { ConflictError, MasterRejectedError, OfflineMissError, VantageError } from '../src/index.js';

describe('errors across the bridge', () => {
  it('arrive as the class they were thrown as, with their code and fields', () => {
    const rejected = fromWireError(structuredClone(toWireError(new MasterRejectedError(422, 'validation', 'price must be positive'))));
    expect(rejected).toBeInstanceOf(MasterRejectedError);
    expect(rejected).toBeInstanceOf(VantageError);
    expect(rejected).toMatchObject({ name: 'MasterRejectedError', code: 'master_rejected', status: 422, masterCode: 'validation', transient: false, message: 'price must be positive' });
    const miss = fromWireError(structuredClone(toWireError(new OfflineMissError('products/page_9'))));
    expect(miss).toBeInstanceOf(OfflineMissError);
    expect(miss).toMatchObject({ code: 'offline_miss', cacheKey: 'products/page_9' });
  });

  it('a conflict arrives as a ConflictError with the master row it met', () => {
    const theirs = { id: 'a', name: 'Theirs', _version: 7 };
    const conflict = fromWireError(structuredClone(toWireError(new ConflictError(theirs, 'PATCH /api/products/a: 412 changed', 'op-1'))));
    expect(conflict).toBeInstanceOf(ConflictError);
    expect(conflict).toMatchObject({ name: 'ConflictError', code: 'conflict', status: 412, opId: 'op-1', theirs });
  });

  it('keep their class when the worker was minified: classes are found by code, not by constructor name', () => {
    const wire = toWireError(new OfflineMissError('products/page_2'));
    expect(wire.name).toBe('OfflineMissError'); // a stable name, not new.target.name
    const mangled = fromWireError({ ...wire, name: 'V' });
    expect(mangled).toBeInstanceOf(OfflineMissError);
    expect(mangled).toMatchObject({ code: 'offline_miss', cacheKey: 'products/page_2' });
    class V extends OfflineMissError {} // what a minifier leaves of a class name
    expect(new V('k').name).toBe('OfflineMissError');
    expect(fromWireError(toWireError(new VantageError('op_discarded', 'gone')))).toBeInstanceOf(VantageError);
  });

  it('keep an unknown error as a plain Error with its name and message', () => {
    const err = fromWireError(toWireError(new RangeError('out of range')));
    expect(err).toBeInstanceOf(Error);
    expect([err.name, err.message]).toEqual(['RangeError', 'out of range']);
    expect(fromWireError(toWireError('a string')).message).toBe('a string');
  });
});
