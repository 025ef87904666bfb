/**
 * An insertReturnId whose answer was lost (issue 10, item 3): while its retry
 * waits, a change event makes every view refetch. A read must never show the
 * row twice (the master's row under its real id, the pending overlay under
 * the temporary id): the read sends the op again first, and reads the master
 * only once the temporary id has given way to the real one.
 */
import 'fake-indexeddb/auto';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';
import { IdbQueue, LiveTable, MemCache, RestTable, SseLiveStream, type LiveTableEvent, type ReadResult } from '../../src/index.js';
import { NodeEventSource } from '../support/node-event-source.js';
import { recordingFetch, TestMaster } from '../support/master.js';

// The retry after the lost answer waits a minute: only a read can make it go sooner.
const retryPolicy = { baseMs: 60_000, capMs: 60_000 };
const SLOW = { timeout: 15_000, interval: 10 };

let master: TestMaster;
const cleanups: Array<() => void | Promise<void>> = [];
let dbSeq = 0;

beforeEach(async () => {
  master = await TestMaster.start();
  await master.seed(); // a, b, c
});

afterEach(async () => {
  for (const fn of cleanups.splice(0)) await fn();
  await master.dispose();
});

/** A worker's table over the real master, with its change feed; every read it answers is kept. */
async function startTable() {
  const net = recordingFetch();
  const queue = new IdbQueue(`it-in-doubt-${process.pid}-${++dbSeq}`);
  const stream = new SseLiveStream(`${master.url}/api/products/events`, { EventSource: NodeEventSource, backoff: { baseMs: 20, capMs: 200 } });
  const table = new LiveTable(new RestTable(master.api, 'products', { fetch: net.fetch }), 'products', new MemCache(), { queue, stream, retryPolicy });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  cleanups.push(async () => {
    table.close();
    stream.close();
    await queue.close();
    net.kill();
  });
  await vi.waitFor(() => expect(events.some((e) => e.type === 'live' && e.event.kind === 'reset')).toBe(true), SLOW);
  const reads: ReadResult[] = [];
  const read = async (...args: Parameters<LiveTable['read']>) => {
    const result = await table.read(...args);
    reads.push(result);
    return result;
  };
  return { net, table, events, reads, read };
}

const names = (r: ReadResult) => r.rows.map(([, row]) => row['name']);

it('a change event while a lost-response insertReturnId waits to retry: the read resends it first, the row shows once, applied once', async () => {
  const { net, table, events, reads, read } = await startTable();
  expect(names(await read())).toEqual(['Apple Pie', 'Brioche', 'Cinnamon Roll']);

  // Every change event makes a read, as a UI showing the list does.
  table.subscribe((e) => {
    if (e.type === 'invalidated' && e.reason === 'event') void read().catch(() => {});
  });

  await master.chaos({ dropAfterCommit: 1 });
  const temporaryId = await table.insertReturnId({ name: 'Donut', price: 3 }, { wait: 'queued', opId: 'op-donut' });
  expect(temporaryId).toBe('op-donut');
  // The master committed it (its event is out), the answer was lost, the retry waits a minute.
  await vi.waitFor(() => expect(events.some((e) => e.type === 'retrying')).toBe(true), SLOW);
  await vi.waitFor(() => expect(events.some((e) => e.type === 'live' && e.event.kind === 'inserted')).toBe(true), SLOW);

  // The event's read sent the op again, got the master's answer through its key, and then read the master.
  const newId = (await table.waitFor('op-donut')) as string;
  await vi.waitFor(() => expect(reads.some((r) => r.source === 'master' && names(r).includes('Donut'))).toBe(true), SLOW);
  const last = await read();
  expect(last.rows.map(([id]) => id)).toEqual(['a', 'b', 'c', newId]);
  expect(last.pendingIds).toEqual([]);
  expect((await table.readOne(newId)).rows).toEqual([[newId, { id: newId, name: 'Donut', price: 3 }]]);

  for (const r of reads) expect(names(r).filter((n) => n === 'Donut').length).toBeLessThanOrEqual(1);
  expect(events).toContainEqual({ type: 'assigned', opId: 'op-donut', temporaryId: 'op-donut', id: newId });
  expect(await master.rows()).toHaveLength(4);
  expect(await master.stats()).toMatchObject({ writes: 1, replays: 1 });
  const sent = net.writes();
  expect(sent.map((r) => r.status)).toEqual([0, 201]);
  expect(sent[1]?.idempotencyKey).toBe(sent[0]?.idempotencyKey);
});

it('when the resend fails too, the read answers from the cache with the row under its temporary id only; the next read settles it', async () => {
  const { net, table, events, read } = await startTable();
  expect((await read()).source).toBe('master');

  await master.chaos({ dropAfterCommit: 1 });
  await table.insertReturnId({ name: 'Donut', price: 3 }, { wait: 'queued', opId: 'op-donut' });
  await vi.waitFor(() => expect(events.some((e) => e.type === 'retrying')).toBe(true), SLOW);
  await vi.waitFor(() => expect(events.some((e) => e.type === 'invalidated' && e.reason === 'event')).toBe(true), SLOW);

  // The resend meets a 503: the op is still in doubt, so the master's rows are not read.
  await master.chaos({ failNext: 1, failOnlyWrites: true, failStatus: 503, retryAfterSec: 0 });
  const listReads = () => net.requests.filter((r) => r.method === 'GET').length;
  const before = listReads();
  const fallback = await read();
  expect(listReads()).toBe(before);
  expect(fallback).toMatchObject({ source: 'cache', stale: true, pendingIds: ['op-donut'] });
  expect(fallback.rows.map(([id]) => id)).toEqual(['op-donut', 'a', 'b', 'c']);
  expect(net.writes().map((r) => r.status)).toEqual([0, 503]);

  const settled = await read();
  const newId = (await table.waitFor('op-donut')) as string;
  expect(settled).toMatchObject({ source: 'master', stale: false, pendingIds: [] });
  expect(settled.rows.map(([id]) => id)).toEqual(['a', 'b', 'c', newId]);
  expect(await master.stats()).toMatchObject({ writes: 1, replays: 1 });
});
