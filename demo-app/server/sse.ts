import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ChangeBatch, FeedHub, FeedMessage, FeedTopic } from './feed.js';
import type { ChangeEvent } from './storage/types.js';

/** Renders one feed message in the text/event-stream format. */
export function formatSse(message: FeedMessage): string {
  // No `id:` on a heartbeat: it is not a point to resume from.
  if (message.type === 'heartbeat') return `event: heartbeat\ndata: ${JSON.stringify({ intervalMs: message.intervalMs })}\n\n`;
  if (message.type === 'reset') {
    const eventId = String(message.eventId);
    return `id: ${eventId}\nevent: reset\ndata: ${JSON.stringify({ eventId })}\n\n`;
  }
  const { eventId, kind, id } = message.event;
  const data = id === undefined ? { eventId: String(eventId), kind } : { eventId: String(eventId), kind, id };
  return `id: ${eventId}\nevent: change\ndata: ${JSON.stringify(data)}\n\n`;
}

const CRLF = Buffer.from('\r\n');

/** `text` as one chunk of a chunked HTTP body, ready for the socket. */
function chunk(text: string): Buffer {
  const data = Buffer.from(text);
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, CRLF]);
}

/** A batch of changes as one chunk: built once, written to every connection of the topic. */
const changesSse = (events: readonly ChangeEvent[]): Buffer => chunk(events.map((event) => formatSse({ type: 'change', event })).join(''));

/**
 * Serves `GET /api/:table/events` until either side closes. Heartbeats are
 * events, not comments: EventSource never surfaces comments, and a client can
 * only notice a dead connection by what it sees.
 *
 * `sessionAlive` is asked before each heartbeat; once it says no (the session
 * expired or logged out) the stream ends, and the client's reconnect is
 * answered 401.
 */
export function serveSse(
  req: IncomingMessage,
  res: ServerResponse,
  hub: FeedHub,
  topic: FeedTopic,
  resumeFrom: string | undefined,
  heartbeatMs: number,
  sessionAlive: () => Promise<boolean> = async () => true,
): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // Proxies such as nginx would otherwise buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  // The body goes straight to the socket in chunks framed here, so a batch
  // of changes is one shared buffer and one socket write per connection,
  // without the http module's work per write; `res.end()` still ends it.
  res.flushHeaders();
  const socket = req.socket;
  const write = (framed: Buffer): void => {
    if (socket.destroyed || res.writableEnded) return;
    socket.write(framed);
    // A reader that stopped reading (or a dead peer) would otherwise make us
    // buffer every later event for it.
    if (socket.writableLength > hub.limits.maxBufferedBytes) socket.destroy();
  };
  write(chunk('retry: 1000\n\n'));
  const send = (message: FeedMessage): void => write(chunk(formatSse(message)));
  const heartbeat = chunk(formatSse({ type: 'heartbeat', intervalMs: heartbeatMs }));
  write(heartbeat); // at once: it tells the client the interval to expect
  // The connection cannot serve another request after a stream, so close it too.
  const end = (): void => {
    res.end();
    req.socket.end();
  };
  const sendChanges = (batch: ChangeBatch): void => write(batch.encoded(changesSse));
  const unsubscribe = hub.subscribe(topic, resumeFrom, { send, sendChanges, end });
  // A session that cannot be checked (storage unreachable) ends the stream too; the client reconnects.
  const beat = (): void => void sessionAlive().then((alive) => (alive ? write(heartbeat) : end()), end);
  const timer = setInterval(beat, heartbeatMs);
  socket.setNoDelay(true);
  res.on('close', () => {
    clearInterval(timer);
    unsubscribe();
  });
}
