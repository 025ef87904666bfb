/**
 * The reference master (demo-app/server) for integration tests: a real HTTP
 * server on a random port over a SQLite file in the temp dir, with helpers to
 * drive its chaos and admin routes and to read its rows with plain fetch.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterClient, type ChaosSettings, type MasterStats } from '../../demo-app/server/client.js';
import { startMaster, type MasterOptions, type RunningMaster } from '../../demo-app/server/server.js';
import type { Row } from '../../src/index.js';

export type { ChaosSettings, MasterStats };

export class TestMaster {
  /** The port, kept across `stop` and `restart` so clients reconnect to the same URL. */
  readonly port: number;
  private running: RunningMaster | undefined;

  private constructor(
    private readonly dir: string,
    readonly dbPath: string,
    readonly opts: Omit<MasterOptions, 'dbPath' | 'port'>,
    running: RunningMaster,
  ) {
    this.running = running;
    this.port = running.port;
  }

  /** A fresh master (chaos routes on) over a new SQLite file. */
  static async start(opts: Omit<MasterOptions, 'dbPath' | 'port'> = {}): Promise<TestMaster> {
    const dir = mkdtempSync(join(tmpdir(), 'vantage-it-'));
    const dbPath = join(dir, 'master.sqlite');
    const full = { chaos: true, heartbeatMs: 1_000, ...opts };
    return new TestMaster(dir, dbPath, full, await startMaster({ ...full, dbPath, port: 0 }));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The apiBase a RestTable takes. */
  get api(): string {
    return `${this.url}/api`;
  }

  get isRunning(): boolean {
    return this.running !== undefined;
  }

  /** Shut the server down (every connection and feed is closed); the SQLite file stays. */
  async stop(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    await running?.close();
  }

  /** Start it again on the same port and SQLite file. Stats and chaos start from zero, as in a new process. */
  async restart(): Promise<void> {
    await this.stop();
    this.running = await startMaster({ ...this.opts, dbPath: this.dbPath, port: this.port });
  }

  /**
   * While this master is stopped, let another master process on the same
   * SQLite file (another port) take writes: the changes a disconnected client
   * must catch up on.
   */
  async whileDown(fn: (otherApi: string) => Promise<void>): Promise<void> {
    if (this.running) throw new Error('whileDown needs the master stopped');
    const other = await startMaster({ ...this.opts, dbPath: this.dbPath, port: 0 });
    try {
      await fn(`${other.url}/api`);
    } finally {
      await other.close();
    }
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async chaos(settings: ChaosSettings): Promise<void> {
    await this.client().chaos(settings);
  }

  async resetChaos(): Promise<void> {
    await this.client().resetChaos();
  }

  async stats(): Promise<MasterStats> {
    return this.client().stats();
  }

  /** Replace the products table with a, b, c and `rows` generated products. */
  async seed(rows = 0): Promise<void> {
    await this.client().seed(rows);
  }

  /** Every row of a table in the master's order, read with plain fetch (not the code under test). */
  async rows(table = 'products'): Promise<Row[]> {
    return (await this.client().rows(table)) as Row[];
  }

  /** One request to the API with plain fetch; resolves with the status and parsed body. */
  async call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
    return this.client().call(method, `/api${path}`, body, headers);
  }

  private client(): MasterClient {
    return new MasterClient(this.url, this.running?.adminToken);
  }
}

/** One request a RestTable made, as `recordingFetch` saw it. */
export interface SentRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  /** The `If-Match` header: the row version the write was made against. */
  ifMatch: string | undefined;
  sentAt: number;
  /** The HTTP status, or 0 when no answer came (network error). Undefined while waiting. */
  status?: number;
  answeredAt?: number;
  /** For a write sent inside a batch: the batch request's number (its `batches` entry). */
  batch?: number;
}

function batchOpsOf(body: unknown): Array<{ method: string; id?: string; key?: string; ifMatch?: string }> | undefined {
  if (typeof body !== 'string') return undefined;
  const ops = (JSON.parse(body) as { ops?: unknown }).ops;
  return Array.isArray(ops) ? ops : undefined;
}

/**
 * A fetch for RestTable that records every request. `kill()` plays a worker
 * that dies: requests it already sent still reach the master, but their
 * answers are never heard (they reject), and later requests fail at once.
 */
export function recordingFetch() {
  const requests: SentRequest[] = [];
  /** Each batch request (`POST …/_batch`) with how many writes it carried; its writes are in `requests`, one entry each. */
  const batches: Array<{ ops: number; status?: number }> = [];
  let killed = false;
  let dying: (err: Error) => void = () => {};
  const death = new Promise<never>((_, reject) => (dying = reject));
  death.catch(() => {});
  const recorded: typeof fetch = async (input, init) => {
    if (killed) throw new TypeError('fetch failed: the worker is dead');
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    const headers = new Headers(init?.headers);
    const method = init?.method ?? 'GET';
    const now = Date.now();
    // A batch is recorded as the writes it carries, each as its own request would be, so order and keys read the same.
    const batchOps = method === 'POST' && url.pathname.endsWith('/_batch') ? batchOpsOf(init?.body) : undefined;
    const entries: SentRequest[] = batchOps
      ? batchOps.map((op) => ({
          method: op.method,
          path: url.pathname.replace(/\/_batch$/, op.id === undefined ? '' : `/${encodeURIComponent(op.id)}`),
          idempotencyKey: op.key,
          ifMatch: op.ifMatch,
          sentAt: now,
          batch: batches.length,
        }))
      : [{ method, path: url.pathname + url.search, idempotencyKey: headers.get('idempotency-key') ?? undefined, ifMatch: headers.get('if-match') ?? undefined, sentAt: now }];
    const batch = batchOps ? { ops: batchOps.length, status: undefined as number | undefined } : undefined;
    if (batch) batches.push(batch);
    requests.push(...entries);
    try {
      const res = await Promise.race([fetch(input, init), death]);
      if (batch) batch.status = res.status;
      const results = batch && res.ok ? ((await res.clone().json()) as { results: Array<{ status: number }> }).results : undefined;
      entries.forEach((entry, i) => (entry.status = results?.[i]?.status ?? res.status));
      return res;
    } catch (err) {
      for (const entry of entries) entry.status = 0;
      throw err;
    } finally {
      for (const entry of entries) entry.answeredAt = Date.now();
    }
  };
  return {
    fetch: recorded,
    requests,
    batches,
    /** Writes only (every method but GET). */
    writes: () => requests.filter((r) => r.method !== 'GET'),
    kill() {
      killed = true;
      dying(new TypeError('fetch failed: the worker is dead'));
    },
  };
}
