/**
 * The part SSE and WebSocket streams share: listeners, lazy connect, state,
 * backoff-and-reconnect, resume from the last event id (E2), noticing a
 * silent (half-open) connection, and reconnecting at once when the network
 * comes back.
 *
 * A transport only knows how to open one connection and report what happens
 * on it through a `ConnectionSink`; everything else lives here, once.
 */
import { backoffDelay } from '../backoff.js';
import type { BackoffPolicy } from '../backoff.js';
import { defaultEnv } from '../env.js';
import type { Env } from '../env.js';
import { Listeners } from '../listeners.js';
import { logger } from '../log.js';
import type { LiveEvent, LiveStream, StreamState } from './types.js';

export const streamLog = logger('vantage-live:stream');

/** Default reconnect backoff of the network streams: 500ms scale, 30s cap. */
export const DEFAULT_STREAM_BACKOFF: BackoffPolicy = { baseMs: 500, capMs: 30_000 };

/** Silence that means a dead connection until the master advertises its interval: twice its default 15s. */
export const DEFAULT_HEARTBEAT_TIMEOUT_MS = 30_000;

/** Subscribes to "the network is back" (the `online` event); returns an unsubscribe function. */
export type OnlineSignal = (listener: () => void) => () => void;

/** The `online` event of the realm the stream runs in (window or worker); none under plain Node. */
export const platformOnline: OnlineSignal = (listener) => {
  const realm = globalThis as { addEventListener?: (t: string, l: () => void) => void; removeEventListener?: (t: string, l: () => void) => void };
  if (typeof realm.addEventListener !== 'function') return () => {};
  realm.addEventListener('online', listener);
  return () => realm.removeEventListener?.('online', listener);
};

export interface ReconnectingStreamOptions {
  /** Resume after this event id on the first connect. */
  lastEventId?: string;
  env?: Env;
  backoff?: BackoffPolicy;
  /** Called with every new event id, after the event reached the listeners (e.g. to persist it). */
  onEventId?: (id: string) => void;
  /**
   * A connection that shows nothing (no heartbeat, no event) for this long is
   * taken for dead: closed, and reopened resuming with `since`. Default: twice
   * the heartbeat interval the master advertises, DEFAULT_HEARTBEAT_TIMEOUT_MS
   * before it has. 0 turns the check off (for masters without heartbeats).
   */
  heartbeatTimeoutMs?: number;
  /** Where "back online" comes from; a stream waiting out its backoff then reconnects at once. Default: platformOnline. */
  online?: OnlineSignal;
}

/** What a transport reports about one connection. Calls after the connection was dropped are ignored. */
export interface ConnectionSink {
  /** The connection is established. */
  opened(): void;
  /** An event arrived. */
  event(e: LiveEvent): void;
  /** The master said it is still there; `intervalMs` is the heartbeat interval it advertises, if it does. */
  heartbeat(intervalMs?: number): void;
  /** The connection failed or closed: the stream closes it and reconnects after a backoff. */
  failed(reason: string): void;
  /** The master refused the credentials (401, 403): the stream waits in `auth-required` for `reconnect()` instead of retrying. */
  unauthorized(reason: string): void;
}

/** One open (or opening) connection, as a transport hands it back. */
export interface Connection {
  /** Close the connection; must not report anything to the sink afterwards (it would be ignored anyway). */
  close(): void;
}

/** `url` with `since=<id>` appended to its query (before any `#fragment`); unchanged when `id` is undefined. */
export function resumeUrl(url: string, id: string | undefined): string {
  if (id === undefined) return url;
  const hash = url.indexOf('#');
  const base = hash < 0 ? url : url.slice(0, hash);
  const fragment = hash < 0 ? '' : url.slice(hash);
  const sep = base.includes('?') ? (base.endsWith('?') || base.endsWith('&') ? '' : '&') : '?';
  return `${base}${sep}since=${encodeURIComponent(id)}${fragment}`;
}

type Listener = (e: LiveEvent) => void;

export abstract class ReconnectingLiveStream implements LiveStream {
  /** Name of the transport, for logs. */
  protected abstract readonly transport: string;
  /** Open one connection to `url` (already carrying `since=` when resuming). May throw: treated as a failure. */
  protected abstract connect(url: string, sink: ConnectionSink): Connection;

  /** The URL of a connection resuming after `lastEventId`: `since=` in the query; a transport that sends a header instead overrides it. */
  protected urlFor(lastEventId: string | undefined): string {
    return resumeUrl(this.url, lastEventId);
  }

  private readonly env: Env;
  private readonly policy: BackoffPolicy;
  private readonly onEventId: ((id: string) => void) | undefined;
  private readonly heartbeatTimeoutMs: number | undefined;
  private readonly online: OnlineSignal;
  private advertisedIntervalMs: number | undefined;
  /** env.now() of the last sign of life of the current connection. */
  private lastHeard = 0;
  private cancelWatchdog: (() => void) | undefined;
  private stopOnline: (() => void) | undefined;
  private readonly listeners = new Listeners<LiveEvent>('live event');
  private readonly stateListeners = new Listeners<StreamState>('stream state');
  private _lastEventId: string | undefined;
  private _state: StreamState = 'closed';
  private attempt = 0;
  /** Bumped for every connection and on close; sink calls from older generations are ignored. */
  private generation = 0;
  private connection: Connection | undefined;
  private cancelTimer: (() => void) | undefined;

  protected constructor(
    protected readonly url: string,
    opts: ReconnectingStreamOptions = {},
  ) {
    this.env = opts.env ?? defaultEnv;
    this.policy = opts.backoff ?? DEFAULT_STREAM_BACKOFF;
    this.onEventId = opts.onEventId;
    this._lastEventId = opts.lastEventId;
    this.heartbeatTimeoutMs = opts.heartbeatTimeoutMs;
    this.online = opts.online ?? platformOnline;
  }

  /** Id of the last event seen (initially `opts.lastEventId`). */
  get lastEventId(): string | undefined {
    return this._lastEventId;
  }

  get state(): StreamState {
    return this._state;
  }

  /** Called on every state change (not with the current state). Returns an unsubscribe function. */
  onState(listener: (s: StreamState) => void): () => void {
    return this.stateListeners.add(listener);
  }

  /** The first subscriber connects; the last one leaving closes the connection. */
  subscribe(listener: Listener): () => void {
    const remove = this.listeners.add(listener);
    if (this.listeners.size === 1 && this._state === 'closed') {
      this.stopOnline = this.online(() => this.reconnectIfWaiting());
      this.connectNow();
    }
    let subscribed = true;
    return () => {
      if (!subscribed) return;
      subscribed = false;
      remove();
      if (this.listeners.size === 0) this.stop();
    };
  }

  /**
   * Connect again now, resuming: after new credentials (a stream in
   * `auth-required` waits for this), or to skip a backoff. Does nothing
   * while the stream is closed or open.
   */
  reconnect(): void {
    if (this._state === 'closed' || this._state === 'open') return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.attempt = 0;
    this.connectNow();
  }

  /** Drop every listener and close the connection. A later `subscribe` connects again. */
  close(): void {
    this.listeners.clear();
    this.stop();
  }

  private setState(next: StreamState): void {
    if (next === this._state) return;
    this._state = next;
    void this.stateListeners.emit(next);
  }

  private stop(): void {
    this.generation++;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    this.stopOnline?.();
    this.stopOnline = undefined;
    this.dropConnection();
    this.attempt = 0;
    this.setState('closed');
  }

  private dropConnection(): void {
    this.cancelWatchdog?.();
    this.cancelWatchdog = undefined;
    const conn = this.connection;
    this.connection = undefined;
    if (!conn) return;
    try {
      conn.close();
    } catch (err) {
      streamLog.warn('closing connection threw', { transport: this.transport, error: String(err) });
    }
  }

  private connectNow(): void {
    const generation = ++this.generation;
    const url = this.urlFor(this._lastEventId);
    this.setState('connecting');
    streamLog.debug('connect', { transport: this.transport, url, eventId: this._lastEventId, attempt: this.attempt });
    const live = () => generation === this.generation;
    const sink: ConnectionSink = {
      opened: () => {
        if (!live()) return;
        this.heard();
        this.attempt = 0;
        streamLog.debug('open', { transport: this.transport, url });
        this.setState('open');
      },
      event: (e) => {
        if (!live()) return;
        this.heard();
        this.deliver(e);
      },
      heartbeat: (intervalMs) => {
        if (!live()) return;
        this.heard();
        streamLog.debug('heartbeat', { transport: this.transport, intervalMs });
        if (intervalMs === undefined || intervalMs === this.advertisedIntervalMs) return;
        this.advertisedIntervalMs = intervalMs;
        // The silence limit changed: count it from now on, not from the old timer.
        this.cancelWatchdog?.();
        this.armWatchdog(generation);
      },
      failed: (reason) => {
        if (live()) this.scheduleReconnect(reason);
      },
      unauthorized: (reason) => {
        if (!live()) return;
        this.generation++; // silence the refused connection; nothing reconnects until reconnect()
        this.dropConnection();
        streamLog.warn('credentials refused: waiting for new ones', { transport: this.transport, reason });
        this.setState('auth-required');
      },
    };
    // Armed before the connection opens: a connect into a black hole is as dead as a silent stream.
    this.heard();
    this.armWatchdog(generation);
    try {
      const conn = this.connect(url, sink);
      // The transport may already have failed synchronously (a new generation started).
      if (live()) this.connection = conn;
      else conn.close();
    } catch (err) {
      if (live()) this.scheduleReconnect(`connect threw: ${String(err)}`);
    }
  }

  /** How long a connection may stay silent; 0 when not checked. */
  private get silenceLimitMs(): number {
    return this.heartbeatTimeoutMs ?? (this.advertisedIntervalMs !== undefined ? 2 * this.advertisedIntervalMs : DEFAULT_HEARTBEAT_TIMEOUT_MS);
  }

  private heard(): void {
    this.lastHeard = this.env.now();
  }

  /**
   * One timer per connection, not one per message: when it fires it re-arms
   * for what is left of the silence limit, counted from the last sign of life.
   */
  private armWatchdog(generation: number): void {
    const limit = this.silenceLimitMs;
    if (limit <= 0) return;
    const left = this.lastHeard + limit - this.env.now();
    this.cancelWatchdog = this.env.setTimer(() => {
      if (generation !== this.generation) return;
      if (this.lastHeard + this.silenceLimitMs > this.env.now()) return this.armWatchdog(generation);
      this.scheduleReconnect(`nothing heard for ${this.silenceLimitMs} ms`);
    }, Math.max(0, left));
  }

  /** Back online: a stream waiting out its backoff connects now instead. */
  private reconnectIfWaiting(): void {
    if (this.cancelTimer === undefined) return;
    streamLog.debug('online: reconnecting now', { transport: this.transport });
    this.cancelTimer();
    this.cancelTimer = undefined;
    this.attempt = 0;
    this.connectNow();
  }

  private scheduleReconnect(reason: string): void {
    const generation = ++this.generation; // silence the failed connection
    this.dropConnection();
    this.setState('connecting');
    const delay = backoffDelay(this.attempt, this.policy, this.env.random);
    streamLog.debug('reconnect scheduled', { transport: this.transport, delay, attempt: this.attempt, reason });
    this.attempt++;
    this.cancelTimer = this.env.setTimer(() => {
      if (generation !== this.generation) return;
      this.cancelTimer = undefined;
      this.connectNow();
    }, delay);
  }

  private deliver(received: LiveEvent): void {
    const eventId = received.eventId;
    if (eventId !== undefined && eventId === this._lastEventId) {
      streamLog.debug('duplicate event skipped', { transport: this.transport, eventId, kind: received.kind });
      return;
    }
    // Without a resume point nothing says what changed while we were away, so
    // the first event stands for everything up to it (a master that announces
    // its head sends a reset first anyway).
    const e: LiveEvent = this._lastEventId === undefined && eventId !== undefined ? { kind: 'reset', eventId } : received;
    if (eventId !== undefined) this._lastEventId = eventId;
    streamLog.debug('event', { transport: this.transport, eventId, kind: e.kind, id: 'id' in e ? e.id : undefined });
    if (e.kind === 'reset') streamLog.debug('reset', { transport: this.transport, eventId });
    void this.listeners.emit(e);
    if (eventId !== undefined && this.onEventId) {
      try {
        this.onEventId(eventId);
      } catch (err) {
        streamLog.warn('onEventId threw', { transport: this.transport, eventId, error: String(err) });
      }
    }
  }
}

/** Parse a change/reset payload shared by both wire formats. Returns undefined when malformed. */
export function toLiveEvent(type: unknown, payload: Record<string, unknown>, fallbackEventId?: string): LiveEvent | undefined {
  const rawId = payload['eventId'];
  const eventId = typeof rawId === 'string' && rawId !== '' ? rawId : typeof rawId === 'number' ? String(rawId) : fallbackEventId || undefined;
  if (type === 'reset') return eventId === undefined ? { kind: 'reset' } : { kind: 'reset', eventId };
  if (type !== 'change') return undefined;
  const kind = payload['kind'];
  if (kind === 'changed') return eventId === undefined ? { kind } : { kind, eventId };
  if (kind === 'inserted' || kind === 'updated' || kind === 'deleted') {
    const id = payload['id'];
    if (typeof id !== 'string') return undefined;
    return eventId === undefined ? { kind, id } : { kind, id, eventId };
  }
  return undefined;
}

/** The interval a heartbeat payload advertises, if it carries a usable one. */
export function heartbeatInterval(payload: Record<string, unknown> | undefined): number | undefined {
  const ms = payload?.['intervalMs'];
  return typeof ms === 'number' && Number.isFinite(ms) && ms > 0 ? ms : undefined;
}

/** JSON.parse into a plain object, or undefined. */
export function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
