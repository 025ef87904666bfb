import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import type { ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { inject } from 'vitest';
import { WebSocket } from 'ws';
import { MasterClient, type Reply } from './client.js';
import { startMaster } from './server.js';
import type { MasterOptions, RunningMaster } from './server.js';

/** The storages a master runs on; the protocol's tests run against each. */
export type StorageKind = 'sqlite' | 'postgres';
export const STORAGES: readonly StorageKind[] = ['sqlite', 'postgres'];

/** A master on a random port over a fresh database: a SQLite file in the temp dir, or a new Postgres database. */
export interface TestMaster extends RunningMaster {
  storage: StorageKind;
  /** The SQLite file (sqlite). */
  dbPath: string | undefined;
  /** The database URL (postgres); another master started with `{ storage: 'postgres', pg }` shares it. */
  pg: string | undefined;
  /** How many idempotency keys the database holds, and the bytes of the answers kept with them. */
  keptKeys(): Promise<{ keys: number; bodyBytes: number }>;
  /** Closes the server and deletes its files (a Postgres database goes with the test cluster). */
  dispose(): Promise<void>;
}

export type TestMasterOptions = Partial<MasterOptions> & { storage?: StorageKind };

// The admin token of each running test master, by URL, so `call` can send it.
const adminTokens = new Map<string, string>();

/**
 * A new, empty database on the test run's Postgres cluster (pg-test-cluster.ts).
 * Without Postgres installed this fails with one line saying to run `npm run setup`.
 */
export async function newTestDatabase(): Promise<string> {
  const broker = inject('pgTestDatabases');
  if (broker === undefined) throw new Error('no Postgres test cluster: vitest.config.ts must list demo-app/server/pg-test-cluster.ts in globalSetup');
  const reply = (await (await fetch(broker, { method: 'POST' })).json()) as { url?: string; error?: string };
  if (reply.url === undefined) throw new Error(reply.error ?? 'the Postgres test cluster did not answer');
  return reply.url;
}

const KEPT_KEYS_SQL = 'SELECT count(*) AS keys, coalesce(sum(octet_length(body)), 0) AS "bodyBytes" FROM idempotency_keys';

async function keptKeys(where: { dbPath?: string; pg?: string }): Promise<{ keys: number; bodyBytes: number }> {
  if (where.pg !== undefined) {
    const client = new pg.Client({ connectionString: where.pg });
    await client.connect();
    try {
      const row = (await client.query(KEPT_KEYS_SQL)).rows[0] as { keys: string; bodyBytes: string };
      return { keys: Number(row.keys), bodyBytes: Number(row.bodyBytes) };
    } finally {
      await client.end();
    }
  }
  const db = new Database(where.dbPath as string, { readonly: true });
  try {
    return db.prepare(KEPT_KEYS_SQL.replace('octet_length(body)', 'length(CAST(body AS BLOB))')).get() as { keys: number; bodyBytes: number };
  } finally {
    db.close();
  }
}

export async function startTestMaster(opts: TestMasterOptions = {}): Promise<TestMaster> {
  const { storage = 'sqlite', ...options } = opts;
  const dir = mkdtempSync(join(tmpdir(), 'vantage-master-'));
  const where =
    storage === 'postgres'
      ? { pg: options.pg ?? (await newTestDatabase()), dbPath: undefined }
      : { pg: undefined, dbPath: options.dbPath ?? join(dir, 'master.sqlite') };
  const master = await startMaster({ port: 0, ...options, ...where });
  adminTokens.set(master.url, master.adminToken);
  return {
    ...master,
    storage,
    ...where,
    keptKeys: () => keptKeys(where),
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
    // agent: false, a connection of its own: a pooled keep-alive socket the server is closing fails with "socket hang up".
    const req: ClientRequest = request(url, { agent: false, headers: { Accept: 'text/event-stream', ...headers } }, (res) => {
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
