/**
 * A table's status line as React state: the network, the writes waiting for
 * the master, the dead letters, the change feed. It starts from the worker's
 * `workerInfo()` and follows the table's `queue` and `stream` events.
 */
import { useMemo, useSyncExternalStore } from 'react';
import { workerInfo, type LiveTableClient } from '../bridge/page.js';
import type { WorkerInfo } from '../bridge/protocol.js';
import type { LiveTableEvent } from '../live-table.js';
import type { StreamState } from '../stream/types.js';

export interface LiveStatusState {
  /** The platform's word: false only when it is sure there is no network. */
  online: boolean;
  /** Writes waiting for the master; undefined until the worker has answered or the queue has changed. */
  pending: number | undefined;
  /** Writes the master refused, waiting for `retry` or `discard`. */
  dead: number | undefined;
  /** The change feed, as the tab hosting it reports it; 'unknown' until then. */
  stream: StreamState | 'unknown';
  /** Whether writes wait for credentials (`required`: sign in again), or 'unknown' until the worker answered. */
  auth: 'ok' | 'required' | 'unknown';
  /** The worker's build version, from `workerInfo()`. */
  version: string | undefined;
  /** Why `workerInfo()` failed, if it did (no service worker, a protocol mismatch). */
  error: unknown;
}

/** Whether the network is there, and news when that changes. Default: `navigator.onLine` and the window's `online`/`offline` events. */
export interface OnlineSource {
  isOnline(): boolean;
  subscribe(listener: () => void): () => void;
}

export const windowOnline: OnlineSource = {
  isOnline: () => globalThis.navigator?.onLine !== false,
  subscribe(listener) {
    addEventListener('online', listener);
    addEventListener('offline', listener);
    return () => {
      removeEventListener('online', listener);
      removeEventListener('offline', listener);
    };
  },
};

export interface LiveStatusOptions {
  /** Where the starting counts come from; default `workerInfo()` over the bridge. */
  info?: () => Promise<WorkerInfo>;
  online?: OnlineSource;
}

export type StatusTable = Pick<LiveTableClient, 'name' | 'subscribe'>;

export class LiveStatus {
  private state: LiveStatusState;
  private readonly listeners = new Set<() => void>();
  private stop: Array<() => void> = [];
  // An event heard before the worker's answer is newer than that answer.
  private heardQueue = false;
  private heardStream = false;
  private heardAuth = false;

  constructor(
    private readonly table: StatusTable,
    private readonly opts: Required<LiveStatusOptions>,
  ) {
    this.state = { online: opts.online.isOnline(), pending: undefined, dead: undefined, stream: 'unknown', auth: 'unknown', version: undefined, error: undefined };
  }

  readonly getSnapshot = (): LiveStatusState => this.state;

  readonly subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    if (this.listeners.size === 1) this.start();
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) {
        this.stop.forEach((stop) => stop());
        this.stop = [];
      }
    };
  };

  private start(): void {
    this.stop.push(this.table.subscribe((e) => this.hear(e)));
    this.stop.push(this.opts.online.subscribe(() => this.set({ online: this.opts.online.isOnline() })));
    this.set({ online: this.opts.online.isOnline() });
    this.opts.info().then(
      (info) => {
        const mine = info.tables.find((t) => t.name === this.table.name);
        this.set({
          version: info.version,
          error: undefined,
          ...(mine && !this.heardQueue ? { pending: mine.pending, dead: mine.dead } : {}),
          ...(mine && !this.heardStream ? { stream: mine.stream } : {}),
          ...(mine && !this.heardAuth ? { auth: mine.authRequired ? 'required' : 'ok' } : {}),
        });
      },
      (error: unknown) => this.set({ error }),
    );
  }

  private hear(e: LiveTableEvent): void {
    if (e.type === 'queue') {
      this.heardQueue = true;
      this.set({ pending: e.pending, dead: e.dead });
    } else if (e.type === 'stream') {
      this.heardStream = true;
      this.set({ stream: e.state });
    } else if (e.type === 'auth') {
      this.heardAuth = true;
      this.set({ auth: e.state });
    }
  }

  private set(change: Partial<LiveStatusState>): void {
    const next = { ...this.state, ...change };
    if ((Object.keys(next) as Array<keyof LiveStatusState>).every((k) => next[k] === this.state[k])) return;
    this.state = next;
    for (const listener of [...this.listeners]) listener();
  }
}

/**
 * The status of `table` and the network: `{ online, pending, dead, stream, auth, version, error }`.
 * `auth` is 'required' while the table's writes wait for credentials.
 */
export function useLiveStatus(table: StatusTable, opts: LiveStatusOptions = {}): LiveStatusState {
  // The sources are read once per table: pass stable functions, as with any store.
  const status = useMemo(() => new LiveStatus(table, { info: opts.info ?? (() => workerInfo()), online: opts.online ?? windowOnline }), [table]);
  return useSyncExternalStore(status.subscribe, status.getSnapshot, status.getSnapshot);
}
