import type { ChangeEvent, Owner, Store } from './store.js';

/**
 * What a feed connection is told: a change, that it must start over from
 * `eventId` (the head), or that the master is still there.
 */
export type FeedMessage =
  | { type: 'change'; event: ChangeEvent }
  | { type: 'reset'; eventId: number }
  | { type: 'heartbeat'; intervalMs: number };

/** One open SSE or WebSocket connection, as the hub sees it. */
export interface FeedConnection {
  send(message: FeedMessage): void;
  /** Ends the connection from the server side (shutdown). */
  end(): void;
}

/** How much one feed connection may cost the master. */
export interface FeedLimits {
  /** A resume that needs more events than this gets `reset` with the head id instead of the backlog. */
  maxBacklog: number;
  /**
   * Bytes a connection may have waiting to be written. A reader that falls
   * this far behind is dropped: it resumes with `since` (or gets a reset),
   * while the master's memory stays bounded by connections × this.
   */
  maxBufferedBytes: number;
}

// The backlog cap fits well inside the buffer (1,000 events of ~100 bytes),
// so a healthy client is never dropped for the size of its own resume.
export const DEFAULT_FEED_LIMITS: FeedLimits = { maxBacklog: 1000, maxBufferedBytes: 256 * 1024 };

/** The part of the store the hub reads: the change log. */
export type ChangeLog = Pick<Store, 'latestEventId' | 'trimmedThrough' | 'eventsAfter'>;

/** What one connection hears: the changes of one table among one owner's rows. */
export interface FeedTopic {
  table: string;
  owner: Owner;
}

interface Subscriber {
  topic: FeedTopic;
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
  readonly limits: FeedLimits;

  constructor(
    private readonly store: ChangeLog,
    limits: Partial<FeedLimits> = {},
  ) {
    this.limits = { ...DEFAULT_FEED_LIMITS, ...limits };
  }

  /**
   * `resumeFrom` is the last event id the client saw. Without one the client
   * is told the head id at once (a `reset`), so a first visit after an absence
   * knows its cache may be stale and has a point to resume from. The head id
   * and event ids are global, so an owner's feed skips the ids of other
   * owners' changes. Returns the unsubscribe function.
   */
  subscribe(topic: FeedTopic, resumeFrom: string | undefined, conn: FeedConnection): () => void {
    const sub: Subscriber = { topic, conn, held: [] };
    const first = resumeFrom === undefined ? [this.head()] : this.backlog(topic, resumeFrom);
    for (const message of first) this.deliver(sub, message);
    this.subscribers.add(sub);
    return () => {
      this.subscribers.delete(sub);
    };
  }

  /** How many connections are subscribed. */
  get size(): number {
    return this.subscribers.size;
  }

  publish(event: ChangeEvent): void {
    for (const sub of this.subscribers) {
      if (sub.topic.table === event.table && sub.topic.owner === event.owner) this.deliver(sub, { type: 'change', event });
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

  private head(): FeedMessage {
    return { type: 'reset', eventId: this.store.latestEventId() };
  }

  private backlog(topic: FeedTopic, resumeFrom: string): FeedMessage[] {
    const latest = this.store.latestEventId();
    const since = /^\d{1,15}$/.test(resumeFrom) ? Number(resumeFrom) : NaN;
    // An id past the end comes from another database (or a wiped one); one
    // below the trim mark means events the client needs are gone. Either way
    // the client can only start over.
    if (Number.isNaN(since) || since > latest || since < this.store.trimmedThrough()) return [this.head()];
    const events = this.store.eventsAfter(topic.table, topic.owner, since);
    // Refetching is cheaper for both sides than replaying a long absence.
    if (events.length > this.limits.maxBacklog) return [this.head()];
    return events.map((event) => ({ type: 'change', event }));
  }

  private deliver(sub: Subscriber, message: FeedMessage): void {
    if (this.paused) sub.held.push(message);
    else sub.conn.send(message);
  }
}
