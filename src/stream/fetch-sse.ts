/**
 * LiveStream over Server-Sent Events read with `fetch`, for feeds that need a
 * header: `EventSource` cannot set one, so a bearer token would have to go in
 * the URL (`?token=`). Same wire format as SseLiveStream (see sse.ts), same
 * heartbeat watchdog, backoff, reconnect and reset (ReconnectingLiveStream);
 * a resume sends `Last-Event-ID` as a header instead of `since=` in the URL.
 *
 * A 401 or 403 puts the stream in `auth-required`: it does not retry with
 * credentials the master refused, and waits for `reconnect()`.
 */
import { AuthRequiredError, InvalidInputError } from '../errors.js';
import type { Connection, ConnectionSink, ReconnectingStreamOptions } from './reconnecting.js';
import { ReconnectingLiveStream, heartbeatInterval, parseObject, streamLog, toLiveEvent } from './reconnecting.js';
import { SseParser } from './sse-parser.js';

export interface FetchSseLiveStreamOptions extends ReconnectingStreamOptions {
  /** Headers of every connection, asked again for each (e.g. `() => ({ authorization: \`Bearer ${token}\` })`). */
  headers?: () => Record<string, string> | Promise<Record<string, string>>;
  /** Defaults to `globalThis.fetch`. */
  fetch?: typeof fetch;
}

export class FetchSseLiveStream extends ReconnectingLiveStream {
  protected readonly transport = 'fetch-sse';
  private readonly fetchImpl: typeof fetch;
  private readonly headers: FetchSseLiveStreamOptions['headers'];

  constructor(url: string, opts: FetchSseLiveStreamOptions = {}) {
    super(url, opts);
    const impl = opts.fetch ?? globalThis.fetch;
    if (typeof impl !== 'function') throw new InvalidInputError('FetchSseLiveStream: no fetch in this environment; pass one as opts.fetch');
    this.fetchImpl = impl.bind(globalThis);
    this.headers = opts.headers;
  }

  // The resume point travels as Last-Event-ID, not in the URL.
  protected override urlFor(): string {
    return this.url;
  }

  protected connect(url: string, sink: ConnectionSink): Connection {
    const abort = new AbortController();
    const lastEventId = this.lastEventId;
    void (async () => {
      const headers: Record<string, string> = { ...(await this.headers?.()), accept: 'text/event-stream' };
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const res = await this.fetchImpl(url, { headers, signal: abort.signal, cache: 'no-store', credentials: 'same-origin' });
      if (res.status === 401 || res.status === 403) {
        await res.body?.cancel().catch(() => {});
        return sink.unauthorized(`${res.status} from the change feed`);
      }
      const type = res.headers.get('content-type') ?? '';
      if (res.status !== 200 || !type.toLowerCase().startsWith('text/event-stream') || !res.body) {
        await res.body?.cancel().catch(() => {});
        return sink.failed(`the change feed answered ${res.status} ${type}`);
      }
      sink.opened();
      const parser = new SseParser({
        event: ({ type, data, id }) => {
          if (type === 'heartbeat') return sink.heartbeat(heartbeatInterval(parseObject(data)));
          const payload = parseObject(data);
          const event = (type === 'change' || type === 'reset') && payload ? toLiveEvent(type, payload, id) : undefined;
          if (event) sink.event(event);
          else streamLog.warn('malformed message ignored', { transport: this.transport, type, data });
        },
      });
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(value);
      }
      parser.end();
      sink.failed('the change feed ended');
    })().catch((err: unknown) => {
      if (abort.signal.aborted) return;
      // No credentials to send (e.g. a worker's user.bearer() before a page handed a token over): wait, do not loop.
      if (err instanceof AuthRequiredError) sink.unauthorized(err.message);
      else sink.failed(`fetch failed: ${String(err)}`);
    });
    return { close: () => abort.abort() };
  }
}
