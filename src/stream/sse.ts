/**
 * LiveStream over Server-Sent Events.
 *
 * Wire format (the master's `/events` endpoint):
 *   event: change   id: 42   data: {"eventId":"42","kind":"inserted","id":"a"}   (no "id" for kind "changed")
 *   event: reset    id: 57  data: {"eventId":"57"}   (also at once on a connection without since: the head id)
 *   event: heartbeat         data: {"intervalMs":15000}   (never delivered to listeners)
 * Heartbeats are events because EventSource hides comments, and a silent
 * connection can only be noticed by what arrives (see ReconnectingLiveStream).
 *
 * The browser EventSource's own reconnect is never used: on error the source is
 * closed and a fresh one opened after a backoff, with `since=<lastEventId>` in
 * the URL (a fresh EventSource cannot send Last-Event-ID as a header).
 */
import type { ConnectionSink, Connection, ReconnectingStreamOptions } from './reconnecting.js';
import { InvalidInputError } from '../errors.js';
import { ReconnectingLiveStream, heartbeatInterval, parseObject, streamLog, toLiveEvent } from './reconnecting.js';

/** The part of the DOM EventSource this stream uses. */
export interface EventSourceLike {
  readonly readyState: number;
  addEventListener(type: string, listener: (ev: Event) => void): void;
  close(): void;
}

export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface SseLiveStreamOptions extends ReconnectingStreamOptions {
  /** Defaults to `globalThis.EventSource`. */
  EventSource?: EventSourceConstructor;
}

export class SseLiveStream extends ReconnectingLiveStream {
  protected readonly transport = 'sse';
  private readonly EventSourceImpl: EventSourceConstructor;

  constructor(url: string, opts: SseLiveStreamOptions = {}) {
    super(url, opts);
    const impl = opts.EventSource ?? (globalThis as { EventSource?: EventSourceConstructor }).EventSource;
    if (!impl) {
      throw new InvalidInputError(
        'SseLiveStream: no EventSource in this environment; pass one as opts.EventSource (e.g. a polyfill under Node)',
      );
    }
    this.EventSourceImpl = impl;
  }

  protected connect(url: string, sink: ConnectionSink): Connection {
    const source = new this.EventSourceImpl(url);
    let closed = false;
    const onData = (type: 'change' | 'reset') => (ev: Event) => {
      if (closed) return;
      const msg = ev as Partial<MessageEvent>;
      const data = msg.data;
      const payload = typeof data === 'string' ? parseObject(data) : undefined;
      const event = payload && toLiveEvent(type, payload, msg.lastEventId);
      if (!event) {
        streamLog.warn('malformed message ignored', { transport: this.transport, type, data });
        return;
      }
      sink.event(event);
    };
    source.addEventListener('open', () => {
      if (!closed) sink.opened();
    });
    source.addEventListener('error', () => {
      if (closed) return;
      closed = true;
      source.close(); // no auto-reconnect: the stream reconnects with ?since=
      sink.failed('eventsource error');
    });
    source.addEventListener('change', onData('change'));
    source.addEventListener('reset', onData('reset'));
    source.addEventListener('heartbeat', (ev: Event) => {
      if (closed) return;
      const data = (ev as Partial<MessageEvent>).data;
      sink.heartbeat(heartbeatInterval(typeof data === 'string' ? parseObject(data) : undefined));
    });
    source.addEventListener('message', (ev: Event) => {
      if (!closed) streamLog.warn('unnamed message ignored', { transport: this.transport, data: (ev as Partial<MessageEvent>).data });
    });
    return {
      close: () => {
        closed = true;
        source.close();
      },
    };
  }
}
