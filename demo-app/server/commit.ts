import { HttpError } from './errors.js';
import { keyRecord, replayedResponse } from './idempotency.js';
import type { KeyedWrite } from './idempotency.js';
import type { ChangeEvent, OwnedRows, Store, StoredResponse } from './store.js';
import type { Applied } from './writes.js';

/** The result of a write request: either freshly applied (with its event) or replayed. */
export type Committed =
  | (StoredResponse & { replayed: false; event: ChangeEvent })
  | (StoredResponse & { replayed: true });

/**
 * Applies a write exactly once per idempotency key. The key lookup, the
 * write, its change event and the remembered answer share one transaction:
 * a crash can never leave a write applied without its key (a retry would
 * apply it twice) or a key without its write (a retry would be told it
 * succeeded when nothing happened).
 *
 * For the same reason a key is never seen "in progress" here: SQLite
 * transactions are synchronous and a key is stored only together with its
 * write, so a concurrent duplicate finds either nothing or the finished
 * answer. The 409 `idempotency_key_in_progress` of docs/protocol.md is for
 * backends that apply writes asynchronously; this one cannot produce it.
 */
export function commitWrite(
  store: Store,
  rows: OwnedRows,
  table: string,
  keyed: KeyedWrite | undefined,
  apply: () => Applied,
  now = Date.now(),
): Committed {
  return store.transaction((): Committed => {
    if (keyed !== undefined) {
      // Looked up under the writer's owner: one user's key never answers another's request.
      const prior = store.findKey(rows.owner, keyed.key, now);
      if (prior !== undefined) {
        if (prior.fingerprint !== keyed.fingerprint) {
          throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used for another request; use a new key per write');
        }
        return { ...replayedResponse(rows, prior), replayed: true };
      }
    }
    const applied = apply();
    const event = rows.appendEvent(table, applied.change.kind, applied.change.id);
    if (keyed !== undefined) store.saveKey(keyRecord(keyed, rows.owner, table, applied), now);
    return { status: applied.status, body: applied.body, replayed: false, event };
  });
}
