/**
 * A LiveTableClient for hook tests: every call is recorded and answered by the
 * test (a deferred per call), and events are emitted by hand.
 */
import type { ClientReadResult, LiveTableClient } from '../../src/bridge/page.js';
import type { LiveTableEvent } from '../../src/live-table.js';
import type { Id, Row } from '../../src/types.js';

export interface Product extends Row {
  name: string;
  price: number;
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

export interface Call {
  method: string;
  args: unknown[];
  answer: Deferred<unknown>;
}

export type FakeTable = LiveTableClient<Product> & {
  calls: Call[];
  callsOf(method: string): Call[];
  emit(e: LiveTableEvent): void;
  listenerCount(): number;
};

export function page(rows: Array<[Id, Product]>, cacheKey = 'products/page_1'): ClientReadResult<Product> {
  return { rows, cacheKey, source: 'cache', stale: false, revalidating: false, fetchedAt: 0, pendingIds: [], conflicts: [] };
}

export function fakeTable(name = 'products'): FakeTable {
  const calls: Call[] = [];
  const listeners = new Set<(e: LiveTableEvent) => void>();
  const call =
    (method: string) =>
    (...args: unknown[]) => {
      const answer = deferred<unknown>();
      calls.push({ method, args, answer });
      return answer.promise;
    };
  const methods = ['read', 'readOne', 'list', 'get', 'insert', 'insertReturnId', 'replace', 'patch', 'delete', 'deleteAll', 'flush', 'waitFor', 'pending', 'deadLetters', 'retry', 'discard', 'invalidate', 'cacheEntries', 'prefetch', 'startPrefetch', 'cancelPrefetch', 'pin', 'unpin', 'offlineStatus'];
  return {
    name,
    ...Object.fromEntries(methods.map((m) => [m, call(m)])),
    subscribe(listener: (e: LiveTableEvent) => void) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    calls,
    callsOf: (method: string) => calls.filter((c) => c.method === method),
    emit: (e: LiveTableEvent) => [...listeners].forEach((l) => l(e)),
    listenerCount: () => listeners.size,
  } as unknown as FakeTable;
}

/** Events as the worker broadcasts them, with only the fields the hooks look at filled in. */
export const events = {
  queued: (): LiveTableEvent => ({ type: 'queued', op: { opId: 'op' } as never }),
  applied: (): LiveTableEvent => ({ type: 'applied', op: { opId: 'op' } as never, result: {} }),
  invalidated: (prefix: string): LiveTableEvent => ({ type: 'invalidated', prefix, reason: 'event' }),
  refreshed: (cacheKey: string): LiveTableEvent => ({ type: 'refreshed', cacheKey }),
  read: (): LiveTableEvent => ({ type: 'read', cacheKey: 'products/page_1', outcome: 'hit', ms: 1 }),
  queue: (pending: number, dead: number): LiveTableEvent => ({ type: 'queue', pending, dead }),
  stream: (state: 'connecting' | 'open' | 'closed'): LiveTableEvent => ({ type: 'stream', state }),
};
