/**
 * One tab at a time holds the connection to the master's change feed and
 * forwards its events into the worker (a service worker cannot keep a stream
 * open: it is stopped when idle). The tab is elected with a Web Lock; when it
 * closes, the lock passes to a tab that is waiting for it.
 */
import type { LiveStream, StreamState } from '../stream/types.js';
import { logger } from '../log.js';
import { callWorker, type BridgeOptions } from './page.js';

const log = logger('vantage-live:bridge');

/** A stream the leader can close when it steps down. */
export type ClosableStream = LiveStream & { close(): void };

/**
 * Compete for leadership of `table`'s change feed. While this tab leads, it
 * opens the stream with `open(lastEventId)` (the id the worker last took in,
 * so nothing is missed across leaders and visits) and forwards every event.
 * Returns a function that steps down or stops waiting.
 */
export function hostLiveStream(table: string, open: (lastEventId: string | undefined) => ClosableStream, opts: BridgeOptions = {}): () => void {
  const locks = globalThis.navigator?.locks;
  if (!locks) throw new Error('Web Locks are not available: cannot elect a stream leader');
  const stop = new AbortController();
  const send = (body: Parameters<typeof callWorker>[0], label: string): Promise<void> =>
    callWorker(body, label, opts).then(
      () => {},
      (err) => log.warn(`${label} not forwarded`, { table, error: String(err) }),
    );

  locks
    .request(`vantage-live:stream:${table}`, { signal: stop.signal }, async () => {
      const lastEventId = (await callWorker({ kind: 'stream-resume', table }, 'stream-resume', opts)) as string | undefined;
      log.info('leading the change feed', { table, lastEventId });
      const stream = open(lastEventId);
      // Events go to the worker one at a time, in order: the worker records the last id it took in.
      let chain = Promise.resolve();
      const off = stream.subscribe((event) => {
        chain = chain.then(() => send({ kind: 'live-event', table, event }, 'live-event'));
      });
      const offState = stream.onState?.((state: StreamState) => void send({ kind: 'stream-state', table, state }, 'stream-state'));
      await new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }));
      off();
      offState?.();
      stream.close();
      await send({ kind: 'stream-state', table, state: 'closed' }, 'stream-state');
    })
    .catch((err: unknown) => {
      if ((err as { name?: string }).name !== 'AbortError') log.error('stream leadership failed', { table, error: String(err) });
    });
  return () => stop.abort();
}
