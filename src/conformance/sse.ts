/**
 * Reads a text/event-stream by hand (Node has no EventSource), keeping what
 * EventSource would hide: whether each event carried its own `id:` line.
 */
import type { ClientRequest, IncomingHttpHeaders, IncomingMessage } from 'node:http';

/** One dispatched event. `id` is the `id:` line of this event's block, undefined when it had none. */
export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export class SseStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: SseEvent[] = [];
  private ended = false;
  private endReason = '';
  private readonly waiters = new Set<() => void>();

  /**
   * @param res the answer to the feed's GET; its body is read from here on
   * @param req its request, destroyed by `close`
   * @param timeoutMs how long `until` waits before it gives up
   */
  constructor(
    res: IncomingMessage,
    private readonly req: ClientRequest,
    private readonly timeoutMs: number,
  ) {
    this.status = res.statusCode ?? 0;
    this.headers = res.headers;
    res.setEncoding('utf8');
    let buffer = '';
    let block: { id?: string; event?: string; data: string[] } = { data: [] };
    const onLine = (line: string): void => {
      if (line === '') {
        if (block.data.length > 0) this.push({ event: block.event ?? 'message', id: block.id, data: block.data.join('\n') });
        block = { data: [] };
        return;
      }
      if (line.startsWith(':')) return;
      const colon = line.indexOf(':');
      const name = colon === -1 ? line : line.slice(0, colon);
      const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (name === 'id') block.id = value;
      else if (name === 'event') block.event = value;
      else if (name === 'data') block.data.push(value);
    };
    res.on('data', (chunk: string) => {
      buffer += chunk;
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) !== -1) {
        const width = buffer.startsWith('\r\n', nl) ? 2 : 1;
        onLine(buffer.slice(0, nl));
        buffer = buffer.slice(nl + width);
      }
    });
    const end = (reason: string): void => {
      if (this.ended) return;
      this.ended = true;
      this.endReason = reason;
      this.notify();
    };
    res.on('end', () => end('the server ended the stream'));
    res.on('error', (err) => end(`the stream failed: ${err.message}`));
    res.on('close', () => end('the stream closed'));
  }

  /**
   * Resolves with the events seen so far once `done` holds for them; rejects
   * with a message naming `what` when the stream ends or the timeout passes.
   */
  until(done: (events: SseEvent[]) => boolean, what: string): Promise<SseEvent[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (done(this.events)) {
          cleanup();
          resolve(this.events);
        } else if (this.ended) {
          cleanup();
          reject(new Error(`${what}: ${this.endReason} first; events seen: ${describeEvents(this.events)}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${what}: nothing within ${this.timeoutMs} ms; events seen: ${describeEvents(this.events)}`));
      }, this.timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  close(): void {
    this.req.destroy();
  }

  private push(event: SseEvent): void {
    this.events.push(event);
    this.notify();
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** Events as they would read in the stream, shortened for a one-line report. */
export function describeEvents(events: SseEvent[]): string {
  if (events.length === 0) return 'none';
  const text = events.map((e) => `${e.id === undefined ? '' : `id:${e.id} `}${e.event} ${e.data}`).join(' | ');
  return text.length > 400 ? `${text.slice(0, 400)}...` : text;
}
