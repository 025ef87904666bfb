import type { Server } from 'node:http';
import type { Socket } from 'node:net';

/** How many connections the master holds open, and how fast a request must arrive. */
export interface ConnectionLimits {
  /** Open connections in total (HTTP, feeds, WebSockets); past it new ones are closed at once. */
  maxConnections: number;
  /** Open connections from one client address, so one client cannot take them all. */
  maxConnectionsPerClient: number;
  /** A request's headers must arrive within this; slow senders hold a connection each. */
  headersTimeoutMs: number;
  /** The whole request (headers and body) must arrive within this. */
  requestTimeoutMs: number;
}

// Sized well under a default 1024 file-descriptor limit; a benchmark that
// opens many browser contexts from one address raises them.
export const DEFAULT_LIMITS: ConnectionLimits = {
  maxConnections: 800,
  maxConnectionsPerClient: 200,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
};

/** Options for `http.createServer` that enforce the timeouts. */
export function timeoutOptions(limits: ConnectionLimits) {
  return {
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
    // Node checks the timeouts on this interval (30 s by default), which would
    // let a short headersTimeout run long.
    connectionsCheckingInterval: Math.max(10, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
  };
}

/**
 * Caps open connections in total (Node's own `maxConnections`) and per client
 * address, which Node has no setting for. A connection past a cap is closed
 * before it is read: the client sees a network error, which it retries.
 */
export function limitConnections(server: Server, limits: ConnectionLimits): void {
  server.maxConnections = limits.maxConnections;
  const open = new Map<string, number>();
  server.on('connection', (socket: Socket) => {
    const client = socket.remoteAddress ?? '';
    const count = open.get(client) ?? 0;
    if (count >= limits.maxConnectionsPerClient) {
      socket.destroy();
      return;
    }
    open.set(client, count + 1);
    socket.once('close', () => {
      const left = (open.get(client) ?? 1) - 1;
      if (left === 0) open.delete(client);
      else open.set(client, left);
    });
  });
}
