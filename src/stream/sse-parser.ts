/**
 * An incremental parser of the Server-Sent Events wire format (the WHATWG
 * "event stream interpretation"), for transports that read the body
 * themselves. Bytes go in as they arrive, split anywhere (inside a line, a
 * CRLF or a UTF-8 sequence); whole events come out.
 *
 * Lines end with CRLF, LF or CR. `event`, `data` (lines joined with "\n"),
 * `id` (ignored when it holds NUL) and `retry` (digits only) fields; a line
 * starting with ":" is a comment; one space after the colon is dropped; a
 * leading BOM is ignored; a blank line dispatches, unless no data came.
 */

/** One dispatched event. `id` is the last event id as of this event (it persists across events, as in EventSource). */
export interface SseMessage {
  /** The `event` field, "message" when absent. */
  type: string;
  data: string;
  id: string;
}

export interface SseParserHandlers {
  event(message: SseMessage): void;
  /** A `retry` field: the server's reconnection time in ms. */
  retry?(ms: number): void;
  /** A comment line (without its leading ":"), e.g. a keep-alive. */
  comment?(text: string): void;
}

export class SseParser {
  private readonly decoder = new TextDecoder('utf-8');
  private pending = '';
  private skipLf = false;
  private first = true;
  private data: string[] = [];
  private type = '';
  private lastId = '';

  constructor(private readonly handlers: SseParserHandlers) {}

  /** The last event id seen (an `id` field), even one no event was dispatched with yet. */
  get lastEventId(): string {
    return this.lastId;
  }

  /** Feed the next chunk of the body. */
  push(chunk: Uint8Array): void {
    this.text(this.decoder.decode(chunk, { stream: true }));
  }

  /** The body ended: an event without its blank line is dropped, as the format says. */
  end(): void {
    this.text(this.decoder.decode());
    this.pending = '';
    this.data = [];
    this.type = '';
  }

  private text(text: string): void {
    if (this.first && text.length > 0) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10 && this.skipLf && i === start && this.pending === '') {
        // the LF of a CRLF whose CR ended the previous line
        this.skipLf = false;
        start = i + 1;
        continue;
      }
      this.skipLf = false;
      if (c !== 10 && c !== 13) continue;
      this.line(this.pending + text.slice(start, i));
      this.pending = '';
      this.skipLf = c === 13;
      start = i + 1;
    }
    this.pending += text.slice(start);
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    const colon = line.indexOf(':');
    if (colon === 0) return this.handlers.comment?.(line.slice(1));
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) this.lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.handlers.retry?.(Number(value));
        break;
    }
  }

  private dispatch(): void {
    const data = this.data;
    const type = this.type || 'message';
    this.data = [];
    this.type = '';
    if (data.length === 0) return;
    this.handlers.event({ type, data: data.join('\n'), id: this.lastId });
  }
}
