import { HttpError } from './errors.js';
import type { KeyedWrite, KeyRecord } from './storage/types.js';

/**
 * Applies a write exactly once per idempotency key. Each storage runs these
 * steps in one transaction (`Storage.commit`):
 *
 *   1. the writer's record of the key: found, it is either refused
 *      (`assertSameRequest`) or replayed (`replayedResponse`), and nothing
 *      else happens;
 *   2. the row the write names, as the transaction sees it, and
 *      `write.decide(row)`;
 *   3. the row change, its event, and the key's record (`keyRecord`).
 *
 * One transaction, so a crash can never leave a write applied without its
 * key (a retry would apply it twice) or a key without its write (a retry
 * would be told it succeeded when nothing happened).
 *
 * For the same reason a key is never seen "in progress" here: a key is
 * stored only together with its write, so a concurrent duplicate finds
 * either nothing or the finished answer (SQLite transactions are synchronous;
 * on Postgres a duplicate waits on the key's primary key and then reruns,
 * see postgres.ts). The
 * 409 `idempotency_key_in_progress` of docs/protocol.md is for backends that
 * apply writes asynchronously; this one cannot produce it.
 */
export function assertSameRequest(prior: KeyRecord, keyed: KeyedWrite): void {
  if (prior.fingerprint !== keyed.fingerprint) {
    throw new HttpError(422, 'idempotency_key_reused', 'this Idempotency-Key was used for another request; use a new key per write');
  }
}
