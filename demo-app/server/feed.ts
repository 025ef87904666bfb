import type { ChangeEvent, Store } from './store.js';

/** What a feed connection is told: a change, or that it must start over. */
export type FeedMessage = { type: 'change'; event: ChangeEvent } | { type: 'reset'; eventId: number };

/** One open SSE or WebSocket connection, as the hub sees it. */
export interface FeedConnection {
  send(message: FeedMessage): void;
  /** Ends the connection from the server side (shutdown). */
  end(): void;
}

interface Subscriber {
  table: string;
  conn: FeedConnection;
  held: FeedMessage[];
}

/**
 * Fans committed changes out to feed connections. Subscribing reads the
 * backlog and registers in the same synchronous step, and writes publish
 * synchronously right after they commit, so a connection sees every event
 * once, in order, with no gap between backlog and live.
 */
export class FeedHub {
  private readonly subscribers = new Set<Subscriber>();
  private paused = false;

  constructor(private readonly store: Store) {}

  /**
   * `resumeFrom` is the last event id the client saw (absent: only live
   * events). Returns the unsubscribe function.
   */
  subscribe(table: string, resumeFrom: string | undefined, conn: FeedConnection): () => void {
    const sub: Subscriber = { table, conn, held: [] };
    if (resumeFrom !== undefined) {
      for (const message of this.backlog(table, resumeFrom)) this.deliver(sub, message);
    }
    this.subscribers.add(sub);
    return () => {
      this.subscribers.delete(sub);
    };
  }

  publish(event: ChangeEvent): void {
    for (const sub of this.subscribers) {
      if (sub.table === event.table) this.deliver(sub, { type: 'change', event });
    }
  }

  /** While paused, messages queue per connection and are delivered in order on resume. */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) return;
    for (const sub of this.subscribers) {
      const held = sub.held.splice(0);
      for (const message of held) sub.conn.send(message);
    }
  }

  /** Ends every connection (server shutdown). */
  closeAll(): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    for (const sub of subs) sub.conn.end();
  }

  private backlog(table: string, resumeFrom: string): FeedMessage[] {
    const latest = this.store.latestEventId();
    const since = /^\d{1,15}$/.test(resumeFrom) ? Number(resumeFrom) : NaN;
    // An id past the end comes from another database (or a wiped one); one
    // below the trim mark means events the client needs are gone. Either way
    // the client can only start over.
    if (Number.isNaN(since) || since > latest || since < this.store.trimmedThrough()) {
      return [{ type: 'reset', eventId: latest }];
    }
    return this.store.eventsAfter(table, since).map((event) => ({ type: 'change', event }));
  }

  private deliver(sub: Subscriber, message: FeedMessage): void {
    if (this.paused) sub.held.push(message);
    else sub.conn.send(message);
  }
}
