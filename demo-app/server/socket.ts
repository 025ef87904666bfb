import { WebSocket } from 'ws';
import type { ChangeBatch, FeedHub, FeedMessage, FeedTopic } from './feed.js';
import type { ChangeEvent } from './storage/types.js';

/** Renders one feed message as a WebSocket text frame. */
export function formatWs(message: FeedMessage): string {
  if (message.type === 'heartbeat') return JSON.stringify({ type: 'heartbeat', intervalMs: message.intervalMs });
  if (message.type === 'reset') return JSON.stringify({ type: 'reset', eventId: String(message.eventId) });
  const { eventId, kind, id } = message.event;
  const base = { type: 'change', eventId: String(eventId), kind };
  return JSON.stringify(id === undefined ? base : { ...base, id });
}

/** A batch of changes as text frames' payloads: encoded once, sent on every connection of the topic. */
const changesWs = (events: readonly ChangeEvent[]): Buffer[] => events.map((event) => Buffer.from(formatWs({ type: 'change', event })));

// Long enough for a well-behaved client to answer our close frame.
const CLOSE_GRACE_MS = 1000;

/** The close code of a feed whose session ended (expired or logged out); reconnecting needs a new session. */
export const SESSION_ENDED_CLOSE_CODE = 4401;

// Heartbeat rounds in a row without a pong or message before the peer counts
// as gone. Two, not one: after a stalled event loop the heartbeat timer runs
// before the pong that already arrived is read.
const MISSED_HEARTBEATS = 2;

/**
 * Serves `GET /api/:table/ws` on an accepted WebSocket until either side
 * closes. Each heartbeat is a JSON message (the browser API hides protocol
 * pings from pages) and a protocol ping, which browsers answer on their own;
 * a peer that answers nothing is closed, so half-open sockets do not pile up.
 * `sessionAlive` is asked before each heartbeat; once it says no, the socket
 * is closed with `SESSION_ENDED_CLOSE_CODE`.
 */
export function serveWs(
  ws: WebSocket,
  hub: FeedHub,
  topic: FeedTopic,
  resumeFrom: string | undefined,
  heartbeatMs: number,
  sessionAlive: () => Promise<boolean> = async () => true,
): void {
  const write = (frames: ReadonlyArray<string | Buffer>): void => {
    if (ws.readyState !== WebSocket.OPEN) return;
    for (const frame of frames) ws.send(frame, { binary: false });
    // A reader that fell behind would otherwise make us buffer every later event for it.
    if (ws.bufferedAmount > hub.limits.maxBufferedBytes) ws.terminate();
  };
  const send = (message: FeedMessage): void => write([formatWs(message)]);
  const heartbeat: FeedMessage = { type: 'heartbeat', intervalMs: heartbeatMs };
  send(heartbeat); // at once: it tells the client the interval to expect
  const unsubscribe = hub.subscribe(topic, resumeFrom, {
    send,
    sendChanges: (batch: ChangeBatch) => write(batch.encoded(changesWs)),
    end: () => {
      ws.close(1001, 'server shutting down');
      setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
    },
  });
  let answered = true;
  let missed = 0;
  const heard = (): void => {
    answered = true;
  };
  ws.on('pong', heard);
  ws.on('message', heard);
  const timer = setInterval(() => {
    missed = answered ? 0 : missed + 1;
    answered = false;
    if (missed >= MISSED_HEARTBEATS) return void ws.terminate();
    void sessionAlive()
      .catch(() => false)
      .then((alive) => {
        if (!alive) {
          ws.close(SESSION_ENDED_CLOSE_CODE, 'auth_required');
          setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
          return;
        }
        send(heartbeat);
        if (ws.readyState === WebSocket.OPEN) ws.ping();
      });
  }, heartbeatMs);
  ws.on('close', () => {
    clearInterval(timer);
    unsubscribe();
  });
  // A socket error is followed by 'close'; listening keeps it from crashing the process.
  ws.on('error', () => {});
}
