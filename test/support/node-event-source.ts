/**
 * A minimal EventSource for Node (which has none before v22), for tests.
 *
 * Follows the WHATWG "Server-sent events" processing model: fetch with
 * `Accept: text/event-stream`, fail the connection on a non-200 status or a
 * wrong Content-Type, parse the stream line by line (CRLF, LF or CR endings;
 * `event:`, `data:` (multi-line), `id:`, `retry:`; `:` comments; one optional
 * space after the colon; a leading BOM ignored), dispatch on a blank line,
 * drop an unfinished event when the stream ends, and reconnect after the
 * reconnection time sending `Last-Event-ID`. `close()` stops it for good.
 */

export interface NodeEventSourceInit {
  withCredentials?: boolean;
  /** Initial reconnection time in ms (the spec leaves it to the UA); `retry:` changes it. Default 3000. */
  reconnectMs?: number;
}

type Handler<E extends Event> = ((this: NodeEventSource, ev: E) => unknown) | null;

export class NodeEventSource extends EventTarget {
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSED = 2;
  readonly CONNECTING = 0;
  readonly OPEN = 1;
  readonly CLOSED = 2;

  readonly url: string;
  readonly withCredentials: boolean;
  onopen: Handler<Event> = null;
  onmessage: Handler<MessageEvent> = null;
  onerror: Handler<Event> = null;

  #readyState = 0;
  #reconnectMs: number;
  #lastEventId = '';
  #controller: AbortController | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  // Parser state of the current connection.
  #partial = '';
  #skipLF = false;
  #data = '';
  #eventType = '';
  #idBuffer = '';
  #origin = '';

  constructor(url: string | URL, init: NodeEventSourceInit = {}) {
    super();
    this.url = new URL(String(url)).href; // throws on an invalid URL, as the spec's SyntaxError
    this.withCredentials = init.withCredentials ?? false;
    this.#reconnectMs = init.reconnectMs ?? 3000;
    this.addEventListener('open', (e) => this.onopen?.call(this, e));
    this.addEventListener('message', (e) => this.onmessage?.call(this, e as MessageEvent));
    this.addEventListener('error', (e) => this.onerror?.call(this, e));
    void this.#connect();
  }

  get readyState(): number {
    return this.#readyState;
  }

  /** The reconnection time currently in force (changed by `retry:`). */
  get reconnectionTime(): number {
    return this.#reconnectMs;
  }

  close(): void {
    this.#readyState = NodeEventSource.CLOSED;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#controller?.abort();
    this.#controller = undefined;
  }

  async #connect(): Promise<void> {
    const controller = new AbortController();
    this.#controller = controller;
    const current = () => this.#controller === controller && this.#readyState !== NodeEventSource.CLOSED;
    this.#partial = '';
    this.#skipLF = false;
    this.#data = '';
    this.#eventType = '';
    this.#idBuffer = this.#lastEventId;
    const headers: Record<string, string> = { Accept: 'text/event-stream', 'Cache-Control': 'no-store' };
    if (this.#lastEventId !== '') headers['Last-Event-ID'] = this.#lastEventId;
    let res: Response;
    try {
      res = await fetch(this.url, { headers, signal: controller.signal, cache: 'no-store' });
    } catch {
      if (current()) this.#reestablish();
      return;
    }
    if (!current()) return;
    const mime = (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (res.status !== 200 || mime !== 'text/event-stream' || !res.body) {
      void res.body?.cancel().catch(() => {});
      this.#fail();
      return;
    }
    this.#origin = new URL(res.url || this.url).origin;
    this.#readyState = NodeEventSource.OPEN;
    this.dispatchEvent(new Event('open'));
    const reader = res.body.getReader();
    const decoder = new TextDecoder('utf-8'); // strips one leading BOM
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (!current()) return;
        if (done) {
          this.#feed(decoder.decode(), current);
          break;
        }
        this.#feed(decoder.decode(value, { stream: true }), current);
        if (!current()) return;
      }
    } catch {
      if (!current()) return;
    }
    if (current()) this.#reestablish();
  }

  #feed(chunk: string, current: () => boolean): void {
    let pos = 0;
    if (this.#skipLF && chunk.length > 0) {
      if (chunk[0] === '\n') pos = 1;
      this.#skipLF = false;
    }
    const eol = /\r\n|\r|\n/g;
    eol.lastIndex = pos;
    for (let m = eol.exec(chunk); m; m = eol.exec(chunk)) {
      const line = this.#partial + chunk.slice(pos, m.index);
      this.#partial = '';
      pos = m.index + m[0].length;
      if (m[0] === '\r' && pos === chunk.length) this.#skipLF = true; // a CRLF may be split across chunks
      this.#line(line);
      if (!current()) return;
    }
    this.#partial += chunk.slice(pos);
  }

  #line(line: string): void {
    if (line === '') return this.#dispatch();
    if (line.startsWith(':')) return; // comment
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.#eventType = value;
        break;
      case 'data':
        this.#data += `${value}\n`;
        break;
      case 'id':
        if (!value.includes('\0')) this.#idBuffer = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.#reconnectMs = Number.parseInt(value, 10);
        break;
      default: // unknown fields are ignored
    }
  }

  #dispatch(): void {
    this.#lastEventId = this.#idBuffer;
    if (this.#data === '') {
      this.#eventType = '';
      return;
    }
    const data = this.#data.endsWith('\n') ? this.#data.slice(0, -1) : this.#data;
    const type = this.#eventType || 'message';
    this.#data = '';
    this.#eventType = '';
    if (this.#readyState === NodeEventSource.CLOSED) return;
    this.dispatchEvent(new MessageEvent(type, { data, origin: this.#origin, lastEventId: this.#lastEventId }));
  }

  /** Stream ended or the network failed: CONNECTING, error, wait, fetch again. */
  #reestablish(): void {
    if (this.#readyState === NodeEventSource.CLOSED) return;
    this.#controller = undefined;
    this.#readyState = NodeEventSource.CONNECTING;
    this.dispatchEvent(new Event('error'));
    if (this.#readyState !== NodeEventSource.CONNECTING) return; // closed by an error listener
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#readyState === NodeEventSource.CONNECTING) void this.#connect();
    }, this.#reconnectMs);
  }

  /** Fatal: CLOSED, error, no reconnect. */
  #fail(): void {
    if (this.#readyState === NodeEventSource.CLOSED) return;
    this.#readyState = NodeEventSource.CLOSED;
    this.#controller = undefined;
    this.dispatchEvent(new Event('error'));
  }
}
