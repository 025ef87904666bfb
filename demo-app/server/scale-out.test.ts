import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, expect, it } from 'vitest';
import { call, newTestDatabase, openSse, sseEvents, startTestMaster } from './testkit.js';
import type { SseClient, SseFrame, TestMaster } from './testkit.js';

// Several masters on one Postgres database: what each client sees, whichever
// master it talks to.

const running: Array<{ dispose(): Promise<void> }> = [];
const streams: SseClient[] = [];
afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  for (const master of running.splice(0)) await master.dispose();
});

/** Two masters on one new database. */
async function twoMasters(): Promise<[TestMaster, TestMaster]> {
  const a = await startTestMaster({ storage: 'postgres' });
  running.push(a);
  const b = await startTestMaster({ storage: 'postgres', pg: a.pg });
  running.push(b);
  return [a, b];
}

async function feed(base: string, table: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const stream = await openSse(`${base}/api/${table}/events`, headers);
  streams.push(stream);
  return stream;
}

const changes = (frames: SseFrame[]) => sseEvents(frames).filter((e) => e.event === 'change');
const changeIds = (frames: SseFrame[]) => changes(frames).map((e) => e.data.id as string);
const eventIds = (frames: SseFrame[]) => changes(frames).map((e) => Number(e.id));
/** The stream has told its starting point (the reset, for a stream without a resume point). */
const started = (frames: SseFrame[]) => sseEvents(frames).length > 0;

it('a client subscribed on A hears every write made through B and A, in order and once', async () => {
  const [a, b] = await twoMasters();
  const onA = await feed(a.url, 't');
  const onB = await feed(b.url, 't');
  await onA.frames.until(started, 'the reset on A');
  await onB.frames.until(started, 'the reset on B');

  // Concurrent writes through both masters: their transactions interleave and commit in any order.
  const ids = Array.from({ length: 60 }, (_, i) => `r${i}`);
  const replies = await Promise.all(ids.map((id, i) => call(i % 2 === 0 ? b.url : a.url, 'PUT', `/api/t/${id}`, { i })));
  expect(replies.every((r) => r.status === 200)).toBe(true);

  for (const stream of [onA, onB]) {
    const frames = await stream.frames.until((f) => changes(f).length >= ids.length, 'every write', 10_000);
    expect(new Set(changeIds(frames))).toEqual(new Set(ids));
    expect(changeIds(frames)).toHaveLength(ids.length);
    // Ids are handed out in commit order: the feed is 1, 2, 3, ... with nothing skipped.
    expect(eventIds(frames)).toEqual(ids.map((_, i) => i + 1));
  }
  // Both heard the same sequence.
  expect(changeIds(onA.frames.items)).toEqual(changeIds(onB.frames.items));
});

it('a client resumes on B from an event id it got from A', async () => {
  const [a, b] = await twoMasters();
  const onA = await feed(a.url, 't');
  await onA.frames.until(started, 'the reset');
  await call(a.url, 'PUT', '/api/t/seen', {});
  const [seen] = changes(await onA.frames.until((f) => changeIds(f).includes('seen'), 'the seen change'));
  onA.close();

  await call(a.url, 'PUT', '/api/t/missed-via-a', {});
  await call(b.url, 'PUT', '/api/t/missed-via-b', {});
  const onB = await feed(b.url, 't', { 'Last-Event-ID': String(seen?.id) });
  await call(a.url, 'PUT', '/api/t/live', {});
  const frames = await onB.frames.until((f) => changeIds(f).includes('live'), 'the live change');
  expect(changeIds(frames)).toEqual(['missed-via-a', 'missed-via-b', 'live']);
});

it('the same Idempotency-Key sent to A and then to B is applied once', async () => {
  const [a, b] = await twoMasters();
  const key = { 'Idempotency-Key': 'once-across-masters' };
  const first = await call(a.url, 'POST', '/api/orders', { item: 'tart' }, key);
  const again = await call(b.url, 'POST', '/api/orders', { item: 'tart' }, key);
  expect(first.status).toBe(201);
  expect(again.status).toBe(201);
  expect(again.headers.get('idempotent-replayed')).toBe('true');
  expect(again.body).toEqual(first.body);
  expect((await call(b.url, 'GET', '/api/orders')).body.total).toBe(1);
  expect((await call(a.url, 'GET', '/admin/stats')).body.events).toBe(1);
});

it('the same Idempotency-Key sent to A and B at once is applied once', async () => {
  const [a, b] = await twoMasters();
  const sends = Array.from({ length: 10 }, (_, i) => [`k${i}`, i % 2 === 0 ? [a, b] : [b, a]] as const);
  const replies = await Promise.all(
    sends.flatMap(([key, pair]) => pair.map((m) => call(m.url, 'POST', '/api/orders', { key }, { 'Idempotency-Key': key }))),
  );
  expect(replies.map((r) => r.status).every((s) => s === 201)).toBe(true);
  expect(replies.filter((r) => r.headers.get('idempotent-replayed') === 'true')).toHaveLength(sends.length);
  expect((await call(a.url, 'GET', '/api/orders?ipp=100')).body.total).toBe(sends.length);
});

/** A master in its own process, so it can be killed without a goodbye. */
async function spawnMaster(pg: string): Promise<{ url: string; kill(): Promise<void> }> {
  const main = fileURLToPath(new URL('./main.ts', import.meta.url));
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--pg', pg], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const kill = async (): Promise<void> => {
    child.kill('SIGKILL');
    await exited;
  };
  running.push({ dispose: kill });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const found = /listening on (http:\/\/\S+)/.exec(output);
      if (found?.[1] !== undefined) resolve(found[1]);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    void exited.then(() => reject(new Error(`the master exited: ${output}`)));
  });
  return { url, kill };
}

it('when A is killed mid-stream, the client reconnects to B and misses nothing', async () => {
  const pg = await newTestDatabase();
  const a = await spawnMaster(pg);
  const b = await startTestMaster({ storage: 'postgres', pg });
  running.push(b);

  // Writes keep coming through B the whole time.
  let written = 0;
  let writing = true;
  const writer = (async () => {
    while (writing) {
      const reply = await call(b.url, 'PUT', `/api/t/w${written + 1}`, {});
      expect(reply.status).toBe(200);
      written += 1;
    }
  })();

  const onA = await feed(a.url, 't', { 'Last-Event-ID': '0' });
  await onA.frames.until((f) => changes(f).length >= 10, 'changes on A', 10_000);
  await a.kill();
  await onA.ended;
  const heardOnA = changes(onA.frames.items);
  const last = heardOnA.at(-1)?.id as string;

  const onB = await feed(b.url, 't', { 'Last-Event-ID': last });
  await onB.frames.until((f) => changes(f).length >= 10, 'changes on B after the reconnect', 10_000);
  writing = false;
  await writer;
  const total = written;
  const frames = await onB.frames.until((f) => heardOnA.length + changes(f).length >= total, 'every write', 10_000);

  const heard = [...heardOnA, ...changes(frames)];
  expect(heard.map((e) => Number(e.id))).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  expect(heard.map((e) => e.data.id)).toEqual(Array.from({ length: total }, (_, i) => `w${i + 1}`));
}, 30_000);
