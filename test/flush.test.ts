import 'fake-indexeddb/auto';
import { describe, expect, it } from 'vitest';
import { IdbQueue } from '../src/queue/idb-queue.js';
import { LiveTable, MasterRejectedError, MasterUnavailableError, MemCache, type LiveTableEvent, type WriteQueue } from '../src/index.js';
import { ManualEnv } from './support/manual-env.js';
import { productsMaster } from './support/tables.js';

let dbCount = 0;
function setup(queue: WriteQueue = new IdbQueue(`flush-test-${++dbCount}`)) {
  const env = new ManualEnv();
  const master = productsMaster();
  const table = new LiveTable(master, 'products', new MemCache(), { queue, env, retryPolicy: { baseMs: 1_000, capMs: 60_000 } });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  return { env, master, table, queue, events };
}

const until = (table: LiveTable, type: LiveTableEvent['type']) =>
  new Promise<LiveTableEvent>((resolve) => {
    const off = table.subscribe((e) => {
      if (e.type === type) off(), resolve(e);
    });
  });

describe('the flusher (W2, W4)', () => {
  it('backs off a transient failure with full jitter, then applies once, in order', async () => {
    const { env, master, table } = setup();
    env.randomValue = 0.5;
    master.failNext = [new MasterUnavailableError('down', 503)];
    const retrying = until(table, 'retrying');
    const first = table.insert('d', { name: 'Donut' });
    const second = table.insert('e', { name: 'Eclair' });
    const event = (await retrying) as Extract<LiveTableEvent, { type: 'retrying' }>;
    expect(event.retryAt).toBe(env.time + 500); // random 0.5 of base 1000 * 2^0
    expect(master.calls).toEqual(['insert d']);
    env.advance(499);
    expect(master.calls).toEqual(['insert d']);
    env.advance(1);
    await Promise.all([first, second]);
    expect(master.calls).toEqual(['insert d', 'insert d', 'insert e']);
    expect((await table.pending()).length).toBe(0);
  });

  it("never retries sooner than the master's Retry-After", async () => {
    const { env, master, table } = setup();
    env.randomValue = 0;
    master.failNext = [new MasterUnavailableError('busy', 503, 3_000)];
    const retrying = until(table, 'retrying');
    const write = table.insert('d', { name: 'Donut' });
    expect(((await retrying) as { retryAt: number }).retryAt).toBe(env.time + 3_000);
    env.advance(3_000);
    expect(await write).toMatchObject({ id: 'd' });
  });

  it('grows the backoff exponentially up to the cap', async () => {
    const { env, master, table } = setup();
    env.randomValue = 0.999;
    master.failWith = new MasterUnavailableError('down', 502);
    const delays: number[] = [];
    table.subscribe((e) => e.type === 'retrying' && delays.push(e.retryAt - env.time));
    void table.insert('d', { name: 'Donut' }, { wait: 'queued' });
    for (let i = 0; i < 8; i++) {
      await until(table, 'retrying');
      env.advance(env.nextTimerAt! - env.time);
    }
    expect(delays.slice(0, 8)).toEqual([999, 1998, 3996, 7992, 15984, 31968, 59940, 59940]);
  });

  it('moves a permanent failure to dead letters with the reason, and later ops still apply', async () => {
    const { master, table } = setup();
    master.failNext = [new MasterRejectedError(422, 'validation', 'price must be a number')];
    const dead = table.insert('d', { name: 'Donut', price: 'free' });
    const later = table.insert('e', { name: 'Eclair', price: 9 });
    await expect(dead).rejects.toMatchObject({ status: 422, masterCode: 'validation' });
    await later;
    const letters = await table.deadLetters();
    expect(letters).toMatchObject([{ id: 'd', status: 'dead', lastError: { code: 'validation', status: 422, message: 'price must be a number' } }]);
    expect(await master.table.get('e')).toBeDefined();
    expect(await master.table.get('d')).toBeUndefined();
  });

  it('retries a dead letter on request, and discards one on request', async () => {
    const { master, table } = setup();
    master.failNext = [new MasterRejectedError(409, 'conflict', 'taken'), new MasterRejectedError(409, 'conflict', 'taken')];
    await expect(table.insert('d', { name: 'Donut' })).rejects.toBeInstanceOf(MasterRejectedError);
    await expect(table.insert('e', { name: 'Eclair' })).rejects.toBeInstanceOf(MasterRejectedError);
    const [d, e] = await table.deadLetters();
    await table.retry(d!.opId);
    expect(await table.waitFor(d!.opId)).toMatchObject({ id: 'd' });
    await expect(table.waitFor(e!.opId)).rejects.toMatchObject({ masterCode: 'conflict', status: 409 });
    await table.discard(e!.opId);
    await expect(table.waitFor(e!.opId)).rejects.toMatchObject({ code: 'op_discarded', opId: e!.opId });
    expect(await table.deadLetters()).toEqual([]);
    expect(await master.table.get('e')).toBeUndefined();
  });

  it('sends each op once when two flushes start at once', async () => {
    const { env, master, table } = setup();
    env.online = false;
    for (const id of ['d', 'e', 'f']) await table.insert(id, { name: id }, { wait: 'queued' });
    env.online = true;
    await Promise.all([table.flush(), table.flush(), table.flush()]);
    expect(master.calls).toEqual(['insert d', 'insert e', 'insert f']);
  });

  it('sends an op waiting out a backoff at once when flush() is asked for, and only then', async () => {
    const { env, master, table } = setup();
    master.failNext = [new MasterUnavailableError('down', 503), new MasterUnavailableError('down', 503)];
    const retrying = until(table, 'retrying');
    const write = table.insert('d', { name: 'Donut' });
    await retrying;
    await table.flush({ onlyDue: true });
    expect(master.calls).toEqual(['insert d']);
    const again = until(table, 'retrying');
    await table.flush();
    expect(master.calls).toEqual(['insert d', 'insert d']);
    const { retryAt } = (await again) as { retryAt: number };
    expect(retryAt).toBeGreaterThan(env.time);
    await table.flush();
    expect(await write).toMatchObject({ id: 'd' });
    expect(master.calls).toEqual(['insert d', 'insert d', 'insert d']);
  });

  it('does not spend attempts while the platform says it is offline', async () => {
    const { env, master, table } = setup();
    env.online = false;
    const write = table.insert('d', { name: 'Donut' });
    await table.flush();
    expect(master.calls).toEqual([]);
    env.online = true;
    await table.flush();
    expect(await write).toMatchObject({ id: 'd' });
    expect((await master.table.get('d'))).toBeDefined();
  });

  it('tells subscribers about every step: queued, queue size, applied, invalidated', async () => {
    const { table, events } = setup();
    await table.insert('d', { name: 'Donut' });
    expect(events.map((e) => e.type)).toEqual(['queued', 'queue', 'invalidated', 'applied', 'queue']);
    expect(events.filter((e) => e.type === 'queue')).toEqual([
      { type: 'queue', pending: 1, dead: 0 },
      { type: 'queue', pending: 0, dead: 0 },
    ]);
  });
});
