/**
 * A TCP proxy for tests that can go quiet without closing anything: `stall()`
 * freezes every connection open at that moment (nothing is forwarded either
 * way, no FIN, no RST), which is what a half-open connection looks like to
 * both ends. Connections made afterwards are forwarded normally.
 */
import { createConnection, createServer } from 'node:net';
import type { AddressInfo, Server, Socket } from 'node:net';

interface Pair {
  client: Socket;
  upstream: Socket;
  stalled: boolean;
}

export class StallProxy {
  /** The first line of every connection (e.g. `GET /api/t/events?since=4 HTTP/1.1`), in arrival order. */
  readonly requestLines: string[] = [];
  /**
   * Where connections go: a port on 127.0.0.1. Settable after start, so a
   * master can be told the proxy's Host (`host`) before it listens.
   */
  targetPort: number | undefined;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  /** A proxy on a free local port. */
  static async start(targetPort?: number): Promise<StallProxy> {
    let proxy: StallProxy | undefined;
    const server = createServer((client) => proxy?.accept(client));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new StallProxy(server, (server.address() as AddressInfo).port);
    proxy.targetPort = targetPort;
    return proxy;
  }

  /** The Host header clients of the proxy send. */
  get host(): string {
    return `127.0.0.1:${this.port}`;
  }

  get url(): string {
    return `http://${this.host}`;
  }

  /** Connections still forwarding. */
  get forwarding(): number {
    return [...this.pairs].filter((p) => !p.stalled).length;
  }

  /** Freeze every current connection: stop reading both sockets and forward nothing, but close nothing. */
  stall(): void {
    for (const pair of this.pairs) {
      pair.stalled = true;
      pair.client.pause();
      pair.upstream.pause();
    }
  }

  async close(): Promise<void> {
    for (const { client, upstream } of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.pairs.clear();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    if (this.targetPort === undefined) return void client.destroy();
    const upstream = createConnection(this.targetPort, '127.0.0.1');
    const pair: Pair = { client, upstream, stalled: false };
    this.pairs.add(pair);
    let head = '';
    client.on('data', (chunk: Buffer) => {
      if (pair.stalled) return;
      if (!head.includes('\n')) {
        head += chunk.toString('latin1');
        if (head.includes('\n')) this.requestLines.push(head.slice(0, head.indexOf('\n')).trim());
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.stalled) client.write(chunk);
    });
    // A closed end is passed on only while forwarding: a stalled connection stays half-open.
    const closeBoth = () => {
      if (pair.stalled) return;
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    for (const socket of [client, upstream]) {
      socket.on('error', closeBoth);
      socket.on('close', closeBoth);
    }
  }
}
