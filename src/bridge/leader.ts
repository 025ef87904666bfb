/**
 * One tab at a time holds the connection to the master's change feed and
 * forwards its events into the worker (a service worker cannot keep a stream
 * open: it is stopped when idle). The tab is elected with a Web Lock; when it
 * closes, the lock passes to a tab that is waiting for it.
 */
import { backoffDelay } from '../backoff.js';
import { defaultEnv } from '../env.js';
import { VantageError } from '../errors.js';
import { logger } from '../log.js';
import type { LiveEvent, LiveStream, StreamState } from '../stream/types.js';
import { callWorker, type BridgeOptions } from './page.js';

const log = logger('vantage-live:bridge');

/** A stream the leader can close when it steps down. */
export type ClosableStream = LiveStream & { close(): void };

/** The part of the Web Locks API the election uses; injectable for tests. */
export interface LockManagerLike {
  request(name: string, options: { signal: AbortSignal }, callback: () => Promise<unknown>): Promise<unknown>;
}

export interface LeaderOptions extends BridgeOptions {
  /** Default `navigator.locks`. */
  locks?: LockManagerLike;
}

/** The most change events one call to the worker carries. */
const MAX_EVENTS_PER_CALL = 500;

/** Backoff between attempts to lead after a failure (the worker did not answer, or refused an event). */
const RELEAD_BACKOFF = { baseMs: 1_000, capMs: 60_000 };

/**
 * Compete for leadership of `table`'s change feed. While this tab leads, it
 * opens the stream with `open(lastEventId)` (the id the worker last took in,
 * so nothing is missed across leaders and visits) and forwards every event.
 * A failure to lead, or an event the worker did not take in, steps down and
 * competes again after a backoff, reopening from the worker's stored id.
 * Returns a function that steps down or stops waiting.
 */
export function hostLiveStream(table: string, open: (lastEventId: string | undefined) => ClosableStream, opts: LeaderOptions = {}): () => void {
  const locks = opts.locks ?? (globalThis.navigator?.locks as LockManagerLike | undefined);
  if (!locks) throw new VantageError('no_web_locks', 'Web Locks are not available: cannot elect a stream leader');
  const env = opts.env ?? defaultEnv;
  const stop = new AbortController();
  let failures = 0;
  let cancelRetry = () => {};

  const lead = async (): Promise<void> => {
    const lastEventId = (await callWorker({ kind: 'stream-resume', table }, 'stream-resume', opts)) as string | undefined;
    log.info('leading the change feed', { table, lastEventId });
    const stream = open(lastEventId);
    await new Promise<void>((resolve, reject) => {
      // Events go to the worker in order, one call at a time; those that arrive while a call is under way go
      // together in the next (a burst, such as the echo of a batch this origin just applied, is one call).
      let waiting: LiveEvent[] = [];
      let sending = false;
      let done = false;
      const finish = (err?: unknown) => {
        if (done) return;
        done = true;
        off();
        offState?.();
        stream.close();
        void callWorker({ kind: 'stream-state', table, state: 'closed' }, 'stream-state', opts).catch(() => {});
        if (err === undefined) resolve();
        else reject(err);
      };
      const forward = async () => {
        if (sending) return;
        sending = true;
        while (waiting.length > 0 && !done) {
          const events = waiting.splice(0, MAX_EVENTS_PER_CALL);
          try {
            await callWorker({ kind: 'live-event', table, event: events[events.length - 1]!, events }, 'live-event', opts);
            failures = 0;
          } catch (err) {
            finish(err); // the worker did not take them in: its stored id is still before them, so reopening resends them
          }
        }
        sending = false;
      };
      const off = stream.subscribe((event) => {
        waiting.push(event);
        void forward();
      });
      const offState = stream.onState?.((state: StreamState) =>
        void callWorker({ kind: 'stream-state', table, state }, 'stream-state', opts).catch((err) => log.warn('stream state not forwarded', { table, error: String(err) })),
      );
      stop.signal.addEventListener('abort', () => finish(), { once: true });
    });
  };

  const compete = (): void => {
    if (stop.signal.aborted) return;
    locks.request(`vantage-live:stream:${table}`, { signal: stop.signal }, lead).catch((err: unknown) => {
      if (stop.signal.aborted) return;
      const delay = backoffDelay(failures++, RELEAD_BACKOFF, env.random);
      log.warn('change feed leadership failed, competing again', { table, error: String(err), retryInMs: delay });
      cancelRetry = env.setTimer(compete, delay);
    });
  };
  compete();
  return () => {
    stop.abort();
    cancelRetry();
  };
}
