import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { MasterClient, type Reply } from './client.js';
import { startMaster } from './server.js';
import type { MasterOptions, RunningMaster } from './server.js';

/** A master on a random port over a fresh SQLite file in the temp dir. */
export interface TestMaster extends RunningMaster {
  dbPath: string;
  /** Closes the server and deletes its files. */
  dispose(): Promise<void>;
}

// The admin token of each running test master, by URL, so `call` can send it.
const adminTokens = new Map<string, string>();

export async function startTestMaster(opts: Partial<MasterOptions> = {}): Promise<TestMaster> {
  const dir = mkdtempSync(join(tmpdir(), 'vantage-master-'));
  const dbPath = opts.dbPath ?? join(dir, 'master.sqlite');
  const master = await startMaster({ port: 0, ...opts, dbPath });
  adminTokens.set(master.url, master.adminToken);
  return {
    ...master,
    dbPath,
    dispose: async () => {
      adminTokens.delete(master.url);
      await master.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A decoded response: `body` is parsed JSON, or undefined when there is none. */
export type { Reply };

/**
 * Sends one request; `body` is JSON-encoded unless it is already a string.
 * `/admin` calls to a test master carry its token unless `headers` set
 * `Authorization` themselves.
 */
export function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  return new MasterClient(base, adminTokens.get(base)).call(method, path, body, headers);
}

/**
 * Items arriving over time, with a way to wait for a condition on them.
 * Waiting is driven by arrivals, never by sleeping.
 */
export class Collector<T> {
  readonly items: T[] = [];
  private waiters: (() => void)[] = [];

  push(item: T): void {
    this.items.push(item);
    for (const check of [...this.waiters]) check();
  }

  until(done: (items: T[]) => boolean, what = 'condition', timeoutMs = 5000): Promise<T[]> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!done(this.items)) return;
        cleanup();
        resolve(this.items);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.items)}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== check);
      };
      this.waiters.push(check);
      check();
    });
  }
}

/** One thing read from an event stream. */
export type SseFrame =
  | { type: 'event'; id: string | undefined; event: string; data: any }
  | { type: 'comment'; text: string }
  | { type: 'retry'; ms: number };

export interface SseClient {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  frames: Collector<SseFrame>;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens an SSE stream with node:http and parses it by hand (Node has no EventSource). */
export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const frames = new Collector<SseFrame>();
    const req: ClientRequest = request(url, { headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
      res.setEncoding('utf8');
      let buffer = '';
      let fields: { id?: string; event?: string; data: string[] } = { data: [] };
      const onLine = (line: string): void => {
        if (line === '') {
          if (fields.data.length > 0) {
            frames.push({ type: 'event', id: fields.id, event: fields.event ?? 'message', data: JSON.parse(fields.data.join('\n')) });
          }
          fields = { data: [] };
          return;
        }
        if (line.startsWith(':')) return frames.push({ type: 'comment', text: line.slice(1).trim() });
        const colon = line.indexOf(':');
        const name = colon === -1 ? line : line.slice(0, colon);
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'id') fields.id = value;
        else if (name === 'event') fields.event = value;
        else if (name === 'data') fields.data.push(value);
        else if (name === 'retry') frames.push({ type: 'retry', ms: Number(value) });
      };
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let nl: number;
        while ((nl = buffer.indexOf('\n')) !== -1) {
          onLine(buffer.slice(0, nl).replace(/\r$/, ''));
          buffer = buffer.slice(nl + 1);
        }
      });
      const ended = new Promise<void>((done) => res.on('close', () => done()));
      resolve({ status: res.statusCode ?? 0, headers: res.headers, frames, ended, close: () => req.destroy() });
    });
    req.on('error', reject);
    req.end();
  });
}

/** The change/reset events of an SSE stream, without heartbeats, comments and retry lines. */
export const sseEvents = (frames: SseFrame[]): Extract<SseFrame, { type: 'event' }>[] =>
  frames.filter((f): f is Extract<SseFrame, { type: 'event' }> => f.type === 'event' && f.event !== 'heartbeat');

export interface WsClient {
  messages: Collector<any>;
  /** Resolves with the close code when the connection closes. */
  closed: Promise<number>;
  close(): void;
}

/** Opens a WebSocket feed; resolves once the connection is open. */
export function openWs(url: string, headers: Record<string, string> = {}): Promise<WsClient> {
  return new Promise((resolve, reject) => {
    const messages = new Collector<any>();
    const ws = new WebSocket(url, { headers });
    const closed = new Promise<number>((done) => ws.on('close', (code) => done(code)));
    ws.on('message', (data) => messages.push(JSON.parse(String(data))));
    ws.once('open', () => resolve({ messages, closed, close: () => ws.close() }));
    ws.once('error', reject);
  });
}

/** The HTTP status a refused WebSocket upgrade was answered with; rejects if the upgrade succeeds. */
export function wsRefusal(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.close();
      reject(new Error(`the upgrade of ${url} was accepted`));
    });
    ws.once('error', () => {});
  });
}

/** The WebSocket URL of a table's feed. */
export const wsUrl = (base: string, table: string, query = ''): string =>
  `${base.replace(/^http/, 'ws')}/api/${table}/ws${query}`;
