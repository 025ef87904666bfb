import type { WebSocket } from 'ws';
import type { FeedHub, FeedMessage } from './feed.js';

/** Renders one feed message as a WebSocket text frame. */
export function formatWs(message: FeedMessage): string {
  if (message.type === 'reset') return JSON.stringify({ type: 'reset', eventId: String(message.eventId) });
  const { eventId, kind, id } = message.event;
  const base = { type: 'change', eventId: String(eventId), kind };
  return JSON.stringify(id === undefined ? base : { ...base, id });
}

// Long enough for a well-behaved client to answer our close frame.
const CLOSE_GRACE_MS = 1000;

/** Serves `GET /api/:table/ws` on an accepted WebSocket until either side closes. */
export function serveWs(ws: WebSocket, hub: FeedHub, table: string, resumeFrom: string | undefined, heartbeatMs: number): void {
  const unsubscribe = hub.subscribe(table, resumeFrom, {
    send: (message) => ws.send(formatWs(message)),
    end: () => {
      ws.close(1001, 'server shutting down');
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    },
  });
  const heartbeat = setInterval(() => {
    ws.send(JSON.stringify({ type: 'ping' }));
    ws.ping();
  }, heartbeatMs);
  ws.on('close', () => {
    clearInterval(heartbeat);
    unsubscribe();
  });
  // A socket error is followed by 'close'; listening keeps it from crashing the process.
  ws.on('error', () => {});
}
