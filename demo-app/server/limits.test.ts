import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { call, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await master?.dispose();
  master = undefined;
});

/**
 * Opens a connection from `localAddress` (Linux routes all of 127/8 to lo) and
 * sends half a request: the headers never end. `closed` resolves when the
 * server closes it.
 */
function halfSent(port: number, localAddress: string): { socket: Socket; closed: Promise<void> } {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  sockets.push(socket);
  socket.on('error', () => {});
  socket.write(`GET /api/products HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `);
  return { socket, closed: new Promise((resolve) => socket.once('close', () => resolve())) };
}

/** Resolves once `n` of the promises have. */
function atLeast(n: number, promises: Promise<void>[]): Promise<void> {
  let done = 0;
  return new Promise((resolve) => {
    for (const p of promises) void p.then(() => ++done === n && resolve());
  });
}

it('a burst of half-sent requests from one address does not lock out another client', async () => {
  master = await startTestMaster({ limits: { maxConnections: 6, maxConnectionsPerClient: 3 } });
  const burst = Array.from({ length: 10 }, () => halfSent(master!.port, '127.0.0.2'));
  // Seven refused shows the server has dealt with all ten.
  await atLeast(7, burst.map((b) => b.closed));
  expect(burst.filter((b) => !b.socket.destroyed)).toHaveLength(3);

  const res = await call(master.url, 'GET', '/api/products');
  expect(res.status).toBe(200);
});

it('refuses connections past maxConnections in total', async () => {
  master = await startTestMaster({ limits: { maxConnections: 4, maxConnectionsPerClient: 2 } });
  const from = ['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3', '127.0.0.4'];
  const open = from.map((addr) => halfSent(master!.port, addr));
  await open[4]!.closed;
  expect(open.slice(0, 4).every((o) => !o.socket.destroyed)).toBe(true);
  await expect(call(master.url, 'GET', '/api/products')).rejects.toThrow();
  // A connection that closes gives its place back.
  open[0]!.socket.destroy();
  await open[0]!.closed;
  await expect.poll(async () => (await call(master!.url, 'GET', '/api/products').catch(() => ({ status: 0 }))).status).toBe(200);
});

it('closes a request whose headers do not arrive within headersTimeoutMs', async () => {
  master = await startTestMaster({ limits: { headersTimeoutMs: 200 } });
  const slow = halfSent(master.port, '127.0.0.2');
  let answer = '';
  slow.socket.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
  await slow.closed;
  expect(answer).toMatch(/^HTTP\/1\.1 408/);
});
