import type { ChangeEvent, Store, StoredResponse } from './store.js';
import type { Applied } from './writes.js';

/** The result of a write request: either freshly applied (with its event) or replayed. */
export type Committed =
  | (StoredResponse & { replayed: false; event: ChangeEvent })
  | (StoredResponse & { replayed: true });

/**
 * Applies a write exactly once per idempotency scope. The key lookup, the
 * write, its change event and the remembered response share one transaction:
 * a crash can never leave a write applied without its key (a retry would
 * apply it twice) or a key without its write (a retry would be told it
 * succeeded when nothing happened).
 */
export function commitWrite(
  store: Store,
  table: string,
  scope: string | undefined,
  apply: () => Applied,
  now = Date.now(),
): Committed {
  return store.transaction((): Committed => {
    if (scope !== undefined) {
      const prior = store.findResponse(scope, now);
      if (prior !== undefined) return { ...prior, replayed: true };
    }
    const applied = apply();
    const event = store.appendEvent(table, applied.change.kind, applied.change.id);
    const response = { status: applied.status, body: applied.body };
    // Purging on every applied write keeps the key table bounded without a timer.
    store.purgeExpiredResponses(now);
    if (scope !== undefined) store.saveResponse(scope, response, now);
    return { ...response, replayed: false, event };
  });
}
