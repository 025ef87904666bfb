/**
 * Figure 8: change-feed fan-out over two masters on one PostgreSQL database.
 *
 * A throwaway, durable Postgres cluster (fsync and synchronous commit on),
 * two masters as child processes on it (`--pg`, connection caps raised), and
 * N SSE subscribers in this process (raw node:http, not browsers), half on
 * each master, all on one table. Writes go at a steady rate through both
 * masters in turn. For every write and every subscriber: the time from
 * sending the write to that subscriber reading its change. Checked: every
 * subscriber got every write once, in event id (commit) order: 0 lost, 0
 * duplicated. (Writes sent close together may commit in either order; the
 * feed's order is the commit order.)
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { Agent, request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { startPgCluster } from '../../demo-app/server/storage/pg-cluster.js';
import type { Check } from '../lib/report.js';
import { summarize, type Summary } from '../lib/stats.js';

export interface FanoutLevel {
  subscribers: number;
  masters: number;
  writes: number;
  /** Writes asked for per second, and what the masters sustained. */
  targetRatePerS: number;
  writeRatePerS: number;
  /** How long each write took to answer, ms. */
  writeMs: Summary;
  /** From sending a write to a subscriber reading its change, ms, over every (write, subscriber) pair. */
  deliveryMs: Summary;
  lost: number;
  /** Changes heard twice, plus subscribers whose event ids did not rise strictly. */
  duplicated: number;
  /** How long opening every subscriber's stream took, ms. */
  connectMs: number;
}

const QUICK_LEVELS = [1, 200];
const FULL_LEVELS = [1, 1000, 10_000];
const RATE_PER_S = 20;
const WRITES_QUICK = 60;
const WRITES_FULL = 200;
// Streams opened at a time: a burst of thousands of connects only measures the accept queue.
const CONNECT_BATCH = 250;
const TABLE = 'fanout';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Master {
  url: string;
  child: ChildProcess;
}

function spawnMaster(pg: string, subscribers: number): Promise<Master> {
  const caps = String(subscribers + 100);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'demo-app/server/main.ts', '--port', '0', '--pg', pg, '--max-connections', caps, '--max-connections-per-client', caps],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  return new Promise((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const url = /listening on (http:\/\/\S+)/.exec(output)?.[1];
      if (url !== undefined) resolve({ url, child });
    });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.once('exit', (code) => reject(new Error(`a master exited (${code}): ${output.trim().split('\n').at(-1)}`)));
  });
}

/** One subscriber: the write numbers it heard, in order, their event ids, and when. */
interface Subscriber {
  heard: number[];
  eventIds: number[];
  at: number[];
  close(): void;
}

const agent = new Agent({ keepAlive: false, maxSockets: Infinity });

function subscribe(url: string, onReady: () => void, onError: (err: Error) => void): Subscriber {
  const sub: Subscriber = { heard: [], eventIds: [], at: [], close: () => req.destroy() };
  let buffer = '';
  let ready = false;
  const req = request(`${url}/api/${TABLE}/events`, { agent, headers: { Accept: 'text/event-stream' } }, (res) => {
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      const now = performance.now();
      buffer += chunk;
      const end = buffer.lastIndexOf('\n\n');
      if (end === -1) return;
      const complete = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      // The reset (head id) comes first: from then on every change is live.
      if (!ready && complete.includes('event: reset')) {
        ready = true;
        onReady();
      }
      for (const found of complete.matchAll(/id: (\d+)\nevent: change\ndata: [^\n]*"id":"w(\d+)"/g)) {
        sub.eventIds.push(Number(found[1]));
        sub.heard.push(Number(found[2]));
        sub.at.push(now);
      }
    });
  });
  req.on('error', onError);
  req.end();
  return sub;
}

function put(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url + path, { method: 'PUT', agent, headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end('{}');
  });
}

async function measureLevel(masters: Master[], subscribers: number, writes: number, progress: (line: string) => void): Promise<FanoutLevel> {
  const subs: Subscriber[] = [];
  const connectStart = performance.now();
  try {
    for (let i = 0; i < subscribers; i += CONNECT_BATCH) {
      const batch = Math.min(CONNECT_BATCH, subscribers - i);
      await Promise.all(
        Array.from(
          { length: batch },
          (_, j) => new Promise<void>((resolve, reject) => subs.push(subscribe(masters[(i + j) % masters.length]!.url, resolve, reject))),
        ),
      );
    }
    const connectMs = performance.now() - connectStart;
    progress(`  ${subscribers} subscribers connected in ${(connectMs / 1000).toFixed(1)} s; ${writes} writes at ${RATE_PER_S}/s`);

    // Steady rate: write n is sent at start + n / rate, whatever the previous ones are doing.
    const sentAt: number[] = [];
    const writeMs: number[] = [];
    const start = performance.now();
    await Promise.all(
      Array.from({ length: writes }, async (_, n) => {
        const due = start + (n * 1000) / RATE_PER_S;
        await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
        sentAt[n + 1] = performance.now();
        const status = await put(masters[n % masters.length]!.url, `/api/${TABLE}/w${n + 1}`);
        if (status !== 200) throw new Error(`write ${n + 1} answered ${status}`);
        writeMs.push(performance.now() - sentAt[n + 1]!);
      }),
    );
    const writeRatePerS = writes / ((performance.now() - start) / 1000);

    // Every subscriber has heard the last write, or stops changing (then something was lost).
    let last = -1;
    for (let quiet = 0; quiet < 20; ) {
      const total = subs.reduce((s, x) => s + x.heard.length, 0);
      if (subs.every((s) => s.heard.length >= writes)) break;
      quiet = total === last ? quiet + 1 : 0;
      last = total;
      await new Promise((r) => setTimeout(r, 250));
    }

    let lost = 0;
    let duplicated = 0;
    const delivery = new Float64Array(subscribers * writes);
    let samples = 0;
    for (const sub of subs) {
      const seen = new Set<number>();
      for (let k = 0; k < sub.heard.length; k++) {
        const n = sub.heard[k]!;
        if (seen.has(n)) duplicated += 1;
        else delivery[samples++] = sub.at[k]! - sentAt[n]!;
        seen.add(n);
      }
      lost += writes - seen.size;
      // In order: event ids rise strictly (they are global, so every subscriber hears the same sequence).
      if (sub.eventIds.some((id, k) => k > 0 && id <= sub.eventIds[k - 1]!)) duplicated += 1;
    }
    const result: FanoutLevel = {
      subscribers,
      masters: masters.length,
      writes,
      targetRatePerS: RATE_PER_S,
      writeRatePerS: Number(writeRatePerS.toFixed(1)),
      writeMs: summarize(writeMs),
      deliveryMs: summarize(Array.from(delivery.subarray(0, samples))),
      lost,
      duplicated,
      connectMs: Math.round(connectMs),
    };
    progress(
      `  delivery p50 ${result.deliveryMs.p50} ms, p99 ${result.deliveryMs.p99} ms; write p50 ${result.writeMs.p50} ms; ${writeRatePerS.toFixed(1)} writes/s; lost ${lost}, duplicated or out of order ${duplicated}`,
    );
    return result;
  } finally {
    for (const sub of subs) sub.close();
  }
}

export async function fanoutFigure(quick: boolean, progress: (line: string) => void, checks: Check[], levels = quick ? QUICK_LEVELS : FULL_LEVELS): Promise<FanoutLevel[]> {
  const cluster = await startPgCluster({ durable: true });
  const results: FanoutLevel[] = [];
  try {
    for (const subscribers of levels) {
      // A fresh database and fresh masters per level: event ids start at 1 and no level inherits another's load.
      const pg = await cluster.createDatabase(`fanout_${subscribers}`);
      const masters = await Promise.all([spawnMaster(pg, subscribers), spawnMaster(pg, subscribers)]);
      try {
        const level = await measureLevel(masters, subscribers, quick ? WRITES_QUICK : WRITES_FULL, progress);
        results.push(level);
        checks.push({
          name: `fanout: ${subscribers} subscribers over ${masters.length} masters lose and duplicate nothing`,
          ok: level.lost === 0 && level.duplicated === 0,
          detail: `${level.lost} lost, ${level.duplicated} duplicated or out of order, of ${level.writes} writes × ${subscribers} subscribers`,
        });
      } finally {
        for (const master of masters) master.child.kill('SIGKILL');
      }
    }
  } finally {
    await cluster.stop();
  }
  return results;
}
