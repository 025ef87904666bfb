/**
 * A read that follows its table: the external store behind `useLivePage` and
 * `useLiveRow`. It reads when the first component subscribes, reads again on
 * the table events that can change the answer, and stops listening when the
 * last one unsubscribes.
 *
 * Re-reads are coalesced: at most one read is in flight, and any number of
 * events that arrive meanwhile cause exactly one more read after it. A burst of
 * a hundred `queued` events (a bulk import in another tab) is two reads, not a
 * hundred.
 */
import type { LiveTableEvent } from '../live-table.js';

/** What a component sees of a read. A new object whenever anything in it changes, so React can compare by identity. */
export interface LiveQueryState<T> {
  /** The last answer; kept through a failed re-read, so a view does not blank on a transient error. */
  data: T | undefined;
  /** The last read's error, cleared by the next successful read. */
  error: unknown;
  /** True until the first read has answered, with data or an error. */
  isLoading: boolean;
  /** True while a read is in flight, the first or a re-read. */
  isFetching: boolean;
}

export interface LiveQuerySource<T> {
  read(): Promise<T>;
  /** The table's events; returns the unsubscribe function. */
  subscribe(listener: (e: LiveTableEvent) => void): () => void;
  /** Whether this event may change what `read` answers, given the last answer. */
  affects(e: LiveTableEvent, data: T | undefined): boolean;
}

export class LiveQuery<T> {
  private state: LiveQueryState<T> = { data: undefined, error: undefined, isLoading: true, isFetching: false };
  private readonly listeners = new Set<() => void>();
  private stopEvents: (() => void) | undefined;
  private inFlight = false;
  private again = false;

  constructor(private readonly source: LiveQuerySource<T>) {}

  /** For `useSyncExternalStore`: stable between changes. */
  readonly getSnapshot = (): LiveQueryState<T> => this.state;

  /** For `useSyncExternalStore`: the first subscriber starts the read and the event subscription, the last one stops them. */
  readonly subscribe = (onChange: () => void): (() => void) => {
    this.listeners.add(onChange);
    if (this.listeners.size === 1) {
      this.stopEvents = this.source.subscribe((e) => {
        if (this.source.affects(e, this.state.data)) this.refetch();
      });
      // A subscriber that comes back while its read is in flight (React's StrictMode does this) waits for that read.
      if (!this.inFlight) this.refetch();
    }
    return () => {
      this.listeners.delete(onChange);
      if (this.listeners.size === 0) {
        this.stopEvents?.();
        this.stopEvents = undefined;
      }
    };
  };

  /** Read now, or once more after the read in flight. */
  readonly refetch = (): void => {
    if (this.inFlight) {
      this.again = true;
      return;
    }
    this.inFlight = true;
    this.again = false;
    this.set({ isFetching: true });
    this.source.read().then(
      (data) => this.settle({ data, error: undefined }),
      (error: unknown) => this.settle({ error }),
    );
  };

  private settle(outcome: Partial<LiveQueryState<T>>): void {
    this.inFlight = false;
    this.set({ ...outcome, isLoading: false, isFetching: false });
    // Nobody listens any more: the events that asked for another read no longer matter.
    if (this.again && this.listeners.size > 0) this.refetch();
  }

  private set(change: Partial<LiveQueryState<T>>): void {
    this.state = { ...this.state, ...change };
    for (const listener of [...this.listeners]) listener();
  }
}
