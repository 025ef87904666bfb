import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FeedHub, FeedMessage } from './feed.js';

/** Renders one feed message in the text/event-stream format. */
export function formatSse(message: FeedMessage): string {
  if (message.type === 'reset') {
    const eventId = String(message.eventId);
    return `id: ${eventId}\nevent: reset\ndata: ${JSON.stringify({ eventId })}\n\n`;
  }
  const { eventId, kind, id } = message.event;
  const data = id === undefined ? { eventId: String(eventId), kind } : { eventId: String(eventId), kind, id };
  return `id: ${eventId}\nevent: change\ndata: ${JSON.stringify(data)}\n\n`;
}

/** Serves `GET /api/:table/events` until either side closes. */
export function serveSse(
  req: IncomingMessage,
  res: ServerResponse,
  hub: FeedHub,
  table: string,
  resumeFrom: string | undefined,
  heartbeatMs: number,
): void {
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // Proxies such as nginx would otherwise buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  res.write('retry: 1000\n\n');
  const unsubscribe = hub.subscribe(table, resumeFrom, {
    send: (message) => res.write(formatSse(message)),
    // The connection cannot serve another request after a stream, so close it too.
    end: () => {
      res.end();
      req.socket.end();
    },
  });
  const heartbeat = setInterval(() => res.write(': ping\n\n'), heartbeatMs);
  req.socket.setNoDelay(true);
  res.on('close', () => {
    clearInterval(heartbeat);
    unsubscribe();
  });
}
