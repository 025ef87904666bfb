import 'fake-indexeddb/auto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { IdbQueue } from '../src/queue/idb-queue.js';
import {
  AuthRequiredError,
  DeadLetterError,
  InvalidInputError,
  isTransient,
  LiveTable,
  MasterRejectedError,
  MasterUnavailableError,
  MemCache,
  MemQueue,
  RestTable,
  UnexpectedResponseError,
  type Cache,
  type LiveTableEvent,
  type WriteQueue,
} from '../src/index.js';
import { ManualEnv } from './support/manual-env.js';
import { productsMaster, type ObservedTable } from './support/tables.js';

let dbCount = 0;
const newQueue = () => new IdbQueue(`writes-test-${++dbCount}`);

function view(master: ObservedTable, cacheKey: string, queue: WriteQueue, env: ManualEnv, cache: Cache = new MemCache(), retryPolicy = {}) {
  const table = new LiveTable(master, cacheKey, cache, { queue, env, retryPolicy: { baseMs: 1_000, capMs: 60_000, ...retryPolicy } });
  const events: LiveTableEvent[] = [];
  table.subscribe((e) => events.push(e));
  return { table, events };
}

function setup(retryPolicy = {}) {
  const env = new ManualEnv();
  const master = productsMaster();
  const queue = newQueue();
  return { env, master, queue, ...view(master, 'products', queue, env, new MemCache(), retryPolicy) };
}

const next = (table: LiveTable, type: LiveTableEvent['type']) =>
  new Promise<LiveTableEvent>((resolve) => {
    const off = table.subscribe((e) => e.type === type && (off(), resolve(e)));
  });

/** Advance the manual clock to each timer until `done` settles. */
async function runTimersUntil(env: ManualEnv, done: Promise<unknown>): Promise<void> {
  let settled = false;
  void done.then(() => (settled = true), () => (settled = true));
  for (let i = 0; i < 200 && !settled; i++) {
    await new Promise((r) => setImmediate(r));
    if (env.nextTimerAt !== undefined) env.advance(env.nextTimerAt - env.time);
  }
}

describe('re-issuing a write (item 1)', () => {
  it('queues a write repeated with the same opId once, even after it was applied or discarded', async () => {
    const { master, table, env } = setup();
    await table.patch('a', { price: 1 }, { opId: 'op-1' });
    await table.patch('a', { price: 1 }, { opId: 'op-1' });
    expect(master.calls).toEqual(['patch a']);
    env.online = false;
    await table.patch('b', { price: 2 }, { opId: 'op-2', wait: 'queued' });
    await table.discard('op-2');
    env.online = true;
    await expect(table.patch('b', { price: 2 }, { opId: 'op-2' })).rejects.toMatchObject({ code: 'op_discarded', opId: 'op-2' });
    expect(master.calls).toEqual(['patch a']);
  });

  it('names the op in every error that follows a queued write', async () => {
    const { master, table } = setup();
    master.failNext = [new MasterRejectedError(422, 'validation', 'no')];
    const err = await table.patch('a', { price: -1 }, { opId: 'op-x' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRejectedError);
    expect(err).toMatchObject({ opId: 'op-x', status: 422 });
  });
});

describe('two LiveTables over one master table and one queue (item 2)', () => {
  it('share one flusher, and every view hears every outcome: waiters settle, caches invalidate, overlays stay right', async () => {
    const env = new ManualEnv();
    const master = productsMaster();
    const queue = newQueue();
    const a = view(master, 'products', queue, env);
    const b = view(master, 'cheap', queue, env);
    expect((await a.table.read({ page: 1 })).source).toBe('master');
    expect((await b.table.read({ page: 1 })).source).toBe('master');

    env.online = false;
    const patched = a.table.patch('a', { price: 99 });
    await next(a.table, 'queued');
    // B's overlay shows A's queued op at once.
    expect((await b.table.read({ page: 1 })).rows.find(([id]) => id === 'a')?.[1]).toMatchObject({ price: 99 });
    env.online = true;
    await b.table.flush();
    expect(await patched).toMatchObject({ id: 'a', price: 99 });
    expect(master.calls.filter((c) => c.startsWith('patch'))).toEqual(['patch a']);
    for (const v of [a, b]) {
      expect(v.events.filter((e) => e.type === 'applied')).toHaveLength(1);
      const read = await v.table.read({ page: 1 });
      expect(read.source).toBe('master'); // invalidated, so refetched
      expect(read.rows.find(([id]) => id === 'a')?.[1]).toMatchObject({ price: 99 });
    }
  });
});

describe('temporary ids (item 3)', () => {
  it('sends a patch of a row created offline to the id the master gave it, and tells pages temporary → real', async () => {
    const { env, master, table, events } = setup();
    await table.read({ page: 1 });
    env.online = false;
    const temporaryId = await table.insertReturnId({ name: 'Fresh', price: 3 }, { wait: 'queued' });
    await table.patch(temporaryId, { price: 4 }, { wait: 'queued' });
    expect((await table.read({ page: 1 })).rows.filter(([id]) => id === temporaryId)).toEqual([[temporaryId, { name: 'Fresh', price: 4, id: temporaryId }]]);
    env.online = true;
    await table.flush();
    const assigned = events.find((e) => e.type === 'assigned') as Extract<LiveTableEvent, { type: 'assigned' }>;
    expect(assigned.temporaryId).toBe(temporaryId);
    expect(master.calls).toEqual(['list 1/50', 'insertReturnId', `patch ${assigned.id}`]);
    expect(await master.table.get(assigned.id)).toMatchObject({ name: 'Fresh', price: 4 });
    const rows = (await table.read({ page: 1 })).rows.filter(([, row]) => row.name === 'Fresh');
    expect(rows).toEqual([[assigned.id, { id: assigned.id, name: 'Fresh', price: 4 }]]);
    expect(await table.pending()).toEqual([]);
  });
});

describe('nothing blocks a table forever (item 4)', () => {
  it('gives up on an op the master answers 500 every time, and the ops behind it go on', async () => {
    const { env, master, table } = setup({ maxAttempts: 3 });
    master.failNext = Array.from({ length: 3 }, () => new MasterUnavailableError('boom', 500));
    const doomed = table.patch('a', { price: 1 });
    const later = table.patch('b', { price: 2 });
    await runTimersUntil(env, doomed);
    const err = await doomed.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeadLetterError);
    expect(err).toMatchObject({ reason: 'gave_up', opId: expect.any(String) });
    expect(await later).toMatchObject({ price: 2 });
    expect(await table.deadLetters()).toMatchObject([{ deadReason: 'gave_up', attempts: 3 }]);
  });

  it('does not count network errors as attempts, but gives up on an op queued longer than maxAgeMs', async () => {
    const { env, master, table } = setup({ maxAttempts: 2, maxAgeMs: 60 * 60_000 });
    master.goOffline();
    const write = table.patch('a', { price: 1 });
    for (let i = 0; i < 5; i++) {
      await next(table, 'retrying');
      env.advance(env.nextTimerAt! - env.time);
    }
    expect((await table.pending())[0]).toMatchObject({ attempts: 5, status: expect.stringMatching(/queued|in-flight/) });
    env.advance(60 * 60_000);
    await runTimersUntil(env, write);
    await expect(write).rejects.toMatchObject({ code: 'dead_letter', reason: 'expired' });
  });

  it('does not resend an insertReturnId first sent before the idempotency window: its outcome is unknown; a patch is resent', async () => {
    const { env, master, table } = setup({ idempotencyWindowMs: 60_000 });
    master.goOffline();
    const insert = table.insertReturnId({ name: 'X' }).catch((e: unknown) => e);
    const patch = table.patch('a', { price: 5 });
    await next(table, 'retrying');
    env.advance(120_000);
    master.failWith = undefined;
    await table.flush();
    expect(await insert).toMatchObject({ code: 'dead_letter', reason: 'outcome_unknown' });
    expect(await patch).toMatchObject({ price: 5 });
    expect(master.calls.filter((c) => c === 'insertReturnId')).toHaveLength(1);

    const other = setup({ idempotencyWindowMs: 60_000 });
    other.master.goOffline();
    const patchB = other.table.patch('b', { price: 6 });
    await next(other.table, 'retrying');
    other.env.advance(120_000);
    other.master.failWith = undefined;
    await other.table.flush();
    expect(await patchB).toMatchObject({ price: 6 });
  });
});

describe('dead letters never overwrite newer writes (item 5)', () => {
  it('keeps later ops on a dead row waiting (blocked), and a retry lands before them, at the end of the queue', async () => {
    const { master, table } = setup();
    master.failNext = [new MasterRejectedError(422, 'validation', 'not now')];
    const first = table.patch('a', { price: 100 }, { wait: 'queued' });
    await first;
    await next(table, 'dead');
    await table.patch('a', { price: 200 }, { wait: 'queued' });
    await table.patch('b', { price: 7 });
    const [blocked] = await table.pending();
    expect(blocked).toMatchObject({ id: 'a', row: { price: 200 }, blockedBy: expect.any(String) });
    expect(master.calls.filter((c) => c.startsWith('patch'))).toEqual(['patch a', 'patch b']);

    const [dead] = await table.deadLetters();
    const retried = next(table, 'retried');
    await table.retry(dead!.opId);
    expect(await retried).toMatchObject({ overtaken: 0 });
    await table.waitFor(blocked!.opId);
    expect(master.calls.filter((c) => c.startsWith('patch'))).toEqual(['patch a', 'patch b', 'patch a', 'patch a']);
    expect(await master.table.get('a')).toMatchObject({ price: 200 });
  });

  it('does not send the ops on a row created by a dead insert', async () => {
    const { master, table } = setup();
    master.failNext = [new MasterRejectedError(422, 'validation', 'bad row')];
    const id = await table.insertReturnId({ name: 'Bad' }, { wait: 'queued' });
    await next(table, 'dead');
    await table.patch(id, { price: 1 }, { wait: 'queued' });
    await table.flush();
    expect(master.calls).toEqual(['insertReturnId']);
    expect((await table.pending())[0]).toMatchObject({ blockedBy: id });
  });
});

describe('control calls are idempotent (item 6)', () => {
  it('reports success for a retry or a discard repeated after it was done', async () => {
    const { master, table, env } = setup();
    master.failNext = [new MasterRejectedError(422, 'validation', 'no')];
    await table.patch('a', { price: 1 }, { wait: 'queued' });
    await next(table, 'dead');
    const [dead] = await table.deadLetters();
    env.online = false;
    await table.retry(dead!.opId);
    await table.retry(dead!.opId);
    expect((await table.pending()).map((op) => op.opId)).toEqual([dead!.opId]);
    await table.discard(dead!.opId);
    await table.discard(dead!.opId);
    expect(await table.pending()).toEqual([]);
    await expect(table.discard('never-queued')).rejects.toMatchObject({ code: 'unknown_op' });
  });
});

describe('outcomes classified by what they are (item 7)', () => {
  it('treats a TypeError from a write target as a bug (a dead letter), not as a network error', async () => {
    expect(isTransient(new TypeError('x is not a function'))).toBe(false);
    const { master, table } = setup();
    master.failNext = [new TypeError('cannot read properties of undefined')];
    await expect(table.patch('a', { price: 1 })).rejects.toMatchObject({ opId: expect.any(String) });
    expect(await table.deadLetters()).toHaveLength(1);
  });

  describe('RestTable against a server that is not the master', () => {
    let close: (() => void) | undefined;
    afterEach(() => close?.());
    async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
      const server = createServer(handler);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      close = () => server.close();
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
    }

    it('never counts a redirected write as applied (an auth proxy sending it to a login page)', async () => {
      let followed = 0;
      const base = await serve((req, res) => {
        if (req.url === '/login') return followed++, res.writeHead(200, { 'content-type': 'text/html' }).end('<html>sign in</html>');
        res.writeHead(302, { location: '/login' }).end();
      });
      const err = await new RestTable(base, 'products').patch('a', { price: 1 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthRequiredError); // never applied; the table waits for credentials (issue 12)
      expect(err).toMatchObject({ status: 302, transient: false });
      expect(followed).toBe(0);
    });

    it('never counts a 2xx write answered with HTML as applied', async () => {
      const base = await serve((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>ok</html>'));
      await expect(new RestTable(base, 'products').patch('a', { price: 1 })).rejects.toBeInstanceOf(UnexpectedResponseError);
      await expect(new RestTable(base, 'products').delete('a')).rejects.toBeInstanceOf(UnexpectedResponseError);
    });

    it('retries a 409 that says the key is still being processed, and only that 409', async () => {
      const answers = [
        [409, { error: { code: 'idempotency_key_in_progress', message: 'still working' } }],
        [409, { error: { code: 'conflict', message: 'taken' } }],
      ] as const;
      let i = 0;
      const base = await serve((_req, res) => {
        const [status, body] = answers[i++]!;
        res.writeHead(status, { 'content-type': 'application/json', 'retry-after': '1' }).end(JSON.stringify(body));
      });
      const table = new RestTable(base, 'products');
      const first = await table.insert('a', {}).catch((e: unknown) => e);
      expect(first).toBeInstanceOf(MasterUnavailableError);
      expect(first).toMatchObject({ status: 409, retryAfterMs: 1000 });
      expect(await table.insert('a', {}).catch((e: unknown) => e)).toBeInstanceOf(MasterRejectedError);
    });
  });
});

describe('ids (item 8)', () => {
  it.each(['', '.', '..', 'a/b', 'tab\there', 'x'.repeat(257), '\uD800'])('refuses the id %j before anything is queued or sent', async (id) => {
    const { master, table } = setup();
    await expect(table.delete(id)).rejects.toBeInstanceOf(InvalidInputError);
    await expect(table.patch(id, { price: 1 })).rejects.toBeInstanceOf(InvalidInputError);
    await expect(new RestTable('/api', 'products').delete(id)).rejects.toBeInstanceOf(InvalidInputError);
    expect(await table.pending()).toEqual([]);
    expect(master.calls).toEqual([]);
  });

  it('accepts every other id, and RestTable sends it percent-encoded as one path segment', async () => {
    const urls: string[] = [];
    const fetch = (async (url: string) => {
      urls.push(url);
      return new Response(null, { status: 204 });
    }) as typeof globalThis.fetch;
    for (const id of ['%2e', '.a', 'a b?c#d', 'ünï', '..x']) await new RestTable('http://m/api', 'products', { fetch }).delete(id);
    expect(urls).toEqual([
      'http://m/api/products/%252e',
      'http://m/api/products/.a',
      'http://m/api/products/a%20b%3Fc%23d',
      'http://m/api/products/%C3%BCn%C3%AF',
      'http://m/api/products/..x',
    ]);
  });
});

describe('nobody is left waiting (item 9)', () => {
  it('settles a write although a subscriber throws on every event', async () => {
    const { table } = setup();
    table.subscribe(() => {
      throw new Error('a buggy subscriber');
    });
    expect(await table.insert('d', { name: 'Donut' })).toMatchObject({ id: 'd' });
  });

  it('settles a write whose invalidation failed, and retries the invalidation until it lands', async () => {
    const env = new ManualEnv();
    const master = productsMaster();
    const cache = new MemCache();
    const { table } = view(master, 'products', new MemQueue(), env, cache);
    await table.read({ page: 1 });
    const invalidate = cache.invalidatePrefix.bind(cache);
    let failures = 1;
    cache.invalidatePrefix = async (prefix) => {
      if (failures-- > 0) throw new Error('disk trouble');
      return invalidate(prefix);
    };
    expect(await table.patch('a', { price: 42 })).toMatchObject({ price: 42 });
    expect((await cache.get('products/page_1'))?.stale).toBeFalsy();
    env.advance(env.nextTimerAt! - env.time);
    await new Promise((r) => setImmediate(r));
    expect((await cache.get('products/page_1'))?.stale).toBe(true);
  });
});

describe('small ones (item 11)', () => {
  it('does not keep a failed read of the queue: the next read tries again', async () => {
    const env = new ManualEnv();
    const queue = new MemQueue();
    const { table } = view(productsMaster(), 'products', queue, env);
    const ops = queue.ops.bind(queue);
    let failures = 1;
    queue.ops = async (t) => {
      if (failures-- > 0) throw new Error('storage hiccup');
      return ops(t);
    };
    await expect(table.pending()).rejects.toThrow('storage hiccup');
    expect(await table.pending()).toEqual([]);
  });
});
