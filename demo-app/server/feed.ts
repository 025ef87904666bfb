import type { ChangeEvent, Owner, Storage } from './storage/types.js';

/**
 * What a feed connection is told: a change, that it must start over from
 * `eventId` (the head), or that the master is still there.
 */
export type FeedMessage =
  | { type: 'change'; event: ChangeEvent }
  | { type: 'reset'; eventId: number }
  | { type: 'heartbeat'; intervalMs: number };

/**
 * Changes of one topic published together (one page of the change log), in
 * event id order. Every connection of the topic hears the same batch, so its
 * wire form is built once per batch, not once per connection: see `encoded`.
 */
export class ChangeBatch {
  private readonly encodings = new Map<(events: readonly ChangeEvent[]) => unknown, unknown>();

  constructor(readonly events: readonly ChangeEvent[]) {}

  get first(): number {
    return this.events[0]!.eventId;
  }

  get last(): number {
    return this.events.at(-1)!.eventId;
  }

  /** `encode(events)`, computed on the first call for this batch and shared by every later one. */
  encoded<T>(encode: (events: readonly ChangeEvent[]) => T): T {
    if (!this.encodings.has(encode)) this.encodings.set(encode, encode(this.events));
    return this.encodings.get(encode) as T;
  }
}

/** One open SSE or WebSocket connection, as the hub sees it. */
export interface FeedConnection {
  send(message: FeedMessage): void;
  /** Sends every change of the batch, in order; the same as `send` for each, with the encoding shared (`batch.encoded`). */
  sendChanges(batch: ChangeBatch): void;
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

/** The part of the storage the hub reads: the change log. */
export type ChangeLog = Pick<Storage, 'latestEventId' | 'trimmedThrough' | 'eventsAfter'>;

/** What one connection hears: the changes of one table among one owner's rows. */
export interface FeedTopic {
  table: string;
  owner: Owner;
}

interface Subscriber {
  topic: FeedTopic;
  conn: FeedConnection;
  /** Messages waiting while the backlog is read, or while the feed is paused. */
  held: FeedMessage[];
  /** False until the backlog (or the head) was sent. */
  ready: boolean;
  /** The newest event id this connection was sent or told of (a reset's head). */
  lastSent: number;
}

/**
 * Fans committed changes out to feed connections. `publish` must be called
 * with every committed event once, in event id order (the storage's `follow`
 * does that, for events from this master and from others on the same
 * database). A new connection registers first and then reads its backlog;
 * changes published meanwhile wait, and a change is sent only if its id is
 * past the last one sent, so the backlog and live changes meet with no gap
 * and no duplicate, whichever of the two carried an event.
 */
export class FeedHub {
  private readonly subscribers = new Set<Subscriber>();
  /** The same subscribers by topic, so a change is matched against its own topic's only. */
  private readonly byTopic = new Map<string, Set<Subscriber>>();
  private paused = false;
  /** Batches being handed out, oldest first, each with the connections it was published to and how far it got. */
  private readonly sweeps: Array<{ key: string; batch: ChangeBatch; subs: Subscriber[]; next: number }> = [];
  private sweepScheduled = false;
  readonly limits: FeedLimits;

  /**
   * @param head the newest event id when the hub starts; from then on the
   *   newest one published. A connection without a resume point is told this
   *   id, taken at the moment it registers: every later event reaches it as a
   *   change, every earlier one is covered by the reset. (Read from the
   *   database instead, it could include a write the client made after it saw
   *   the connection open, which would then arrive only as part of the reset.)
   */
  constructor(
    private readonly store: ChangeLog,
    limits: Partial<FeedLimits> = {},
    private head = 0,
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
    const sub: Subscriber = { topic, conn, held: [], ready: false, lastSent: 0 };
    this.add(sub);
    if (resumeFrom === undefined) {
      sub.ready = true;
      this.deliver(sub, { type: 'reset', eventId: this.head });
      return () => void this.remove(sub);
    }
    this.start(sub, resumeFrom).catch((err: unknown) => {
      // The client reconnects with its resume point; better than a feed with a hole.
      console.error('vantage-live master: cannot read the change log for a feed', err);
      if (this.remove(sub)) conn.end();
    });
    return () => void this.remove(sub);
  }

  private add(sub: Subscriber): void {
    this.subscribers.add(sub);
    const key = topicKey(sub.topic.table, sub.topic.owner);
    let subs = this.byTopic.get(key);
    if (subs === undefined) this.byTopic.set(key, (subs = new Set()));
    subs.add(sub);
  }

  /** False if it was already gone. */
  private remove(sub: Subscriber): boolean {
    if (!this.subscribers.delete(sub)) return false;
    const key = topicKey(sub.topic.table, sub.topic.owner);
    const subs = this.byTopic.get(key);
    subs?.delete(sub);
    if (subs?.size === 0) this.byTopic.delete(key);
    return true;
  }

  private async start(sub: Subscriber, resumeFrom: string): Promise<void> {
    const first = await this.backlog(sub.topic, resumeFrom);
    if (!this.subscribers.has(sub)) return;
    const live = sub.held.splice(0);
    sub.ready = true;
    for (const message of [...first, ...live]) this.deliver(sub, message);
  }

  /** How many connections are subscribed. */
  get size(): number {
    return this.subscribers.size;
  }

  /**
   * Hands committed events, in id order, to the connections of their topics.
   * Events published together go out together: one write per connection
   * for all of a topic's events, encoded once (ChangeBatch). A topic with
   * thousands of connections is written to a slice at a time, yielding to
   * the event loop in between, so that requests (and the database replies
   * of writes in flight, which hold the event log's lock) are not kept
   * waiting for the whole fan-out. Events reach each connection in id
   * order; when more of a topic's events arrive while its last batch is
   * still being handed out, the connections not yet reached get them in the
   * same write, so a master that falls behind writes fewer, larger chunks
   * instead of falling further behind.
   */
  publish(...events: ChangeEvent[]): void {
    const batches = new Map<string, ChangeEvent[]>();
    for (const event of events) {
      this.head = Math.max(this.head, event.eventId);
      const key = topicKey(event.table, event.owner);
      if (!this.byTopic.has(key)) continue;
      const batch = batches.get(key);
      if (batch === undefined) batches.set(key, [event]);
      else batch.push(event);
    }
    for (const [key, batch] of batches) {
      // Each connection waits in at most one unfinished batch of its topic:
      // the new events join it there, in the same write. Connections every
      // batch has reached already get a batch of their own.
      const waiting = new Set<Subscriber>();
      for (const sweep of this.sweeps) {
        if (sweep.key !== key || sweep.next === sweep.subs.length) continue;
        const unreached = sweep.subs.slice(sweep.next);
        for (const sub of unreached) waiting.add(sub);
        Object.assign(sweep, { batch: new ChangeBatch([...sweep.batch.events, ...batch]), subs: unreached, next: 0 });
      }
      const others = [...this.byTopic.get(key)!].filter((sub) => !waiting.has(sub));
      if (others.length > 0) this.sweeps.push({ key, batch: new ChangeBatch(batch), subs: others, next: 0 });
    }
    this.sweep();
  }

  /**
   * Delivers queued batches to at most `FANOUT_SLICE` connections, and for
   * at most `FANOUT_SLICE_MS`, per turn of the event loop. The time limit is
   * for a busy machine, where each write takes longer: a fixed number of
   * them would then keep the database replies of writes in flight waiting
   * longer.
   */
  private sweep(): void {
    if (this.sweepScheduled) return;
    const until = performance.now() + FANOUT_SLICE_MS;
    let delivered = 0;
    for (let sweep = this.sweeps[0]; sweep !== undefined; sweep = this.sweeps[0]) {
      while (sweep.next < sweep.subs.length) {
        // The clock is looked at every CLOCK_EVERY connections, not at each.
        if (delivered === FANOUT_SLICE || (++delivered % CLOCK_EVERY === 0 && performance.now() >= until)) {
          this.sweepScheduled = true;
          setImmediate(() => {
            this.sweepScheduled = false;
            this.sweep();
          });
          return;
        }
        const sub = sweep.subs[sweep.next++]!;
        if (this.subscribers.has(sub)) this.deliverBatch(sub, sweep.batch);
      }
      this.sweeps.shift();
    }
  }

  /** While paused, messages queue per connection and are delivered in order on resume. */
  setPaused(paused: boolean): void {
    this.paused = paused;
    if (paused) return;
    for (const sub of this.subscribers) {
      if (!sub.ready) continue;
      for (const message of sub.held.splice(0)) this.deliver(sub, message);
    }
  }

  /** Ends every connection (server shutdown). */
  closeAll(): void {
    const subs = [...this.subscribers];
    this.subscribers.clear();
    this.byTopic.clear();
    this.sweeps.length = 0;
    for (const sub of subs) sub.conn.end();
  }

  private async backlog(topic: FeedTopic, resumeFrom: string): Promise<FeedMessage[]> {
    const since = /^\d{1,15}$/.test(resumeFrom) ? Number(resumeFrom) : NaN;
    const [latest, trimmed] = await Promise.all([this.store.latestEventId(), this.store.trimmedThrough()]);
    // An id past the end comes from another database (or a wiped one); one
    // below the trim mark means events the client needs are gone. Either way
    // the client can only start over.
    if (Number.isNaN(since) || since > latest || since < trimmed) return [{ type: 'reset', eventId: latest }];
    // One more than the cap tells "too many" without reading them all.
    const events = await this.store.eventsAfter(topic.owner, topic.table, since, this.limits.maxBacklog + 1);
    // Refetching is cheaper for both sides than replaying a long absence.
    if (events.length > this.limits.maxBacklog) return [{ type: 'reset', eventId: latest }];
    return events.map((event) => ({ type: 'change', event }));
  }

  /** The shared batch when the connection is live and has none of it yet; otherwise event by event, as `deliver` decides. */
  private deliverBatch(sub: Subscriber, batch: ChangeBatch): void {
    if (!sub.ready || this.paused || batch.first <= sub.lastSent) {
      for (const event of batch.events) this.deliver(sub, { type: 'change', event });
      return;
    }
    sub.lastSent = batch.last;
    sub.conn.sendChanges(batch);
  }

  private deliver(sub: Subscriber, message: FeedMessage): void {
    if (!sub.ready || this.paused) return void sub.held.push(message);
    if (message.type === 'change') {
      if (message.event.eventId <= sub.lastSent) return;
      sub.lastSent = message.event.eventId;
    } else if (message.type === 'reset') {
      sub.lastSent = message.eventId;
    }
    sub.conn.send(message);
  }
}

// Connections written to per turn of the event loop, at most, and the time that may take; how many connections between looks at the clock.
const FANOUT_SLICE = 250;
const FANOUT_SLICE_MS = 2;
const CLOCK_EVERY = 16;

// Table names cannot hold a NUL, so the key cannot be read two ways.
const topicKey = (table: string, owner: Owner): string => `${table}\0${owner}`;
