/**
 * LiveStream over a WebSocket.
 *
 * Wire format: text messages
 *   {"type":"change","eventId":"42","kind":"inserted","id":"a"}   (no "id" for kind "changed")
 *   {"type":"reset","eventId":"57"}          (also at once on a connection without since: the head id)
 *   {"type":"heartbeat","intervalMs":15000}  (never delivered to listeners; "ping" from older masters too)
 * Resume: the URL carries `since=<lastEventId>`. The master also sends
 * protocol pings, which the browser answers on its own; pages never see them,
 * hence the JSON heartbeat.
 */
import type { ConnectionSink, Connection, ReconnectingStreamOptions } from './reconnecting.js';
import { InvalidInputError } from '../errors.js';
import { ReconnectingLiveStream, heartbeatInterval, parseObject, streamLog, toLiveEvent } from './reconnecting.js';

/** The part of the DOM WebSocket this stream uses. */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: ((ev: Event) => void) | null;
  onmessage: ((ev: MessageEvent) => void) | null;
  onerror: ((ev: Event) => void) | null;
  onclose: ((ev: CloseEvent) => void) | null;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketLiveStreamOptions extends ReconnectingStreamOptions {
  /** Defaults to `globalThis.WebSocket`. */
  WebSocket?: WebSocketConstructor;
}

export class WebSocketLiveStream extends ReconnectingLiveStream {
  protected readonly transport = 'websocket';
  private readonly WebSocketImpl: WebSocketConstructor;

  constructor(url: string, opts: WebSocketLiveStreamOptions = {}) {
    super(url, opts);
    const impl = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!impl) {
      throw new InvalidInputError(
        "WebSocketLiveStream: no WebSocket in this environment; pass one as opts.WebSocket (e.g. the 'ws' package under Node)",
      );
    }
    this.WebSocketImpl = impl;
  }

  protected connect(url: string, sink: ConnectionSink): Connection {
    const socket = new this.WebSocketImpl(url);
    let closed = false;
    // Handlers stay attached (guarded by `closed`): with the 'ws' package, removing the
    // error handler before closing a still-connecting socket turns its abort into an uncaught error.
    const detach = () => {
      closed = true;
    };
    const fail = (reason: string) => {
      if (closed) return;
      detach();
      try {
        socket.close();
      } catch {
        // already closing
      }
      sink.failed(reason);
    };
    socket.onopen = () => {
      if (!closed) sink.opened();
    };
    socket.onerror = () => fail('websocket error');
    socket.onclose = (ev) => fail(`websocket closed (${ev.code})`);
    socket.onmessage = (ev) => {
      if (closed) return;
      const data: unknown = ev.data;
      const payload = typeof data === 'string' ? parseObject(data) : undefined;
      const type = payload?.['type'];
      if (type === 'heartbeat' || type === 'ping') return sink.heartbeat(heartbeatInterval(payload));
      const event = payload && toLiveEvent(type, payload);
      if (!event) {
        streamLog.warn('malformed message ignored', {
          transport: this.transport,
          data: typeof data === 'string' ? data : `<${typeof data}>`,
        });
        return;
      }
      sink.event(event);
    };
    return {
      close: () => {
        if (closed) return;
        detach();
        socket.close(1000, 'unsubscribed');
      },
    };
  }
}
