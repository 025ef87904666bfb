/**
 * Writes from a component, with their state: whether one is in flight and the
 * last one's error. Over the bridge a write defaults to `wait: 'queued'`, so it
 * settles once the op is durable in the worker, online or not; what the master
 * later makes of it arrives as table events (`applied`, `dead`), which
 * `useLivePage` and `useLiveStatus` follow.
 */
import { useCallback, useMemo, useState } from 'react';
import type { LiveTableClient } from '../bridge/page.js';
import type { Id, Row, WriteOptions } from '../types.js';

/** The table methods `useLiveWrite` uses: a `LiveTableClient`, or anything shaped like one. */
export type WritableTable<R extends Row> = Pick<LiveTableClient<R>, 'insert' | 'insertReturnId' | 'replace' | 'patch' | 'delete'>;

/** How a write went. Write functions never reject, so an `onClick` needs no `catch`; the error is also in `error`. */
export type WriteOutcome<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface LiveWrite<R extends Row> {
  insert(id: Id, row: Omit<R, 'id'>, opts?: WriteOptions): Promise<WriteOutcome<R>>;
  /** Resolves with the temporary id under `wait: 'queued'`; an `assigned` event gives the master's. */
  insertReturnId(row: Omit<R, 'id'>, opts?: WriteOptions): Promise<WriteOutcome<Id>>;
  replace(id: Id, row: Omit<R, 'id'>, opts?: WriteOptions): Promise<WriteOutcome<R>>;
  patch(id: Id, partial: Partial<R>, opts?: WriteOptions): Promise<WriteOutcome<Partial<R>>>;
  delete(id: Id, opts?: WriteOptions): Promise<WriteOutcome<void>>;
  /** True while any write of this hook is in flight. */
  isPending: boolean;
  /** The error of the last write that settled, or undefined when it succeeded. Errors after a queued write carry `opId`. */
  error: unknown;
  /** Forget the last error. */
  reset(): void;
}

export function useLiveWrite<R extends Row>(table: WritableTable<R>): LiveWrite<R> {
  const [inFlight, setInFlight] = useState(0);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(<T>(write: () => Promise<T>): Promise<WriteOutcome<T>> => {
    setInFlight((n) => n + 1);
    const settle = (outcome: WriteOutcome<T>) => {
      // After unmount these are no-ops (React 18+), so a write that outlives its component is harmless.
      setInFlight((n) => n - 1);
      setError(outcome.ok ? undefined : outcome.error);
      return outcome;
    };
    return write().then(
      (value) => settle({ ok: true, value }),
      (err: unknown) => settle({ ok: false, error: err }),
    );
  }, []);

  const writes = useMemo(
    () => ({
      insert: (id: Id, row: Omit<R, 'id'>, opts?: WriteOptions) => run(() => table.insert(id, row, opts)),
      insertReturnId: (row: Omit<R, 'id'>, opts?: WriteOptions) => run(() => table.insertReturnId(row, opts)),
      replace: (id: Id, row: Omit<R, 'id'>, opts?: WriteOptions) => run(() => table.replace(id, row, opts)),
      patch: (id: Id, partial: Partial<R>, opts?: WriteOptions) => run(() => table.patch(id, partial, opts)),
      delete: (id: Id, opts?: WriteOptions) => run(() => table.delete(id, opts)),
      reset: () => setError(undefined),
    }),
    [table, run],
  );
  return { ...writes, isPending: inFlight > 0, error };
}
