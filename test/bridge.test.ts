/**
 * The bridge in Node: the real page and worker sides over real MessageChannels,
 * with a stand-in for the ServiceWorker objects and the page's clock in a
 * ManualEnv, so silence, resends and deadlines are driven without sleeping.
 */
import 'fake-indexeddb/auto';
import { afterEach, describe, expect, it } from 'vitest';
import { IdbQueue } from '../src/queue/idb-queue.js';
import { callWorker, connectLiveTable, hostLiveStream, subscribeTable } from '../src/page.js';
import { serveLiveTables, type WorkerScope } from '../src/worker.js';
import { BridgeTimeoutError, jsonServerAdapter, LiveTable, ManualLiveStream, MemCache, MasterRejectedError, RestTable, type LiveEvent, type TableLike } from '../src/index.js';
import type { LockManagerLike } from '../src/bridge/leader.js';
import { EVENTS_CHANNEL, PROTOCOL_VERSION, type PortMessage, type WorkerInfo } from '../src/bridge/protocol.js';
import { ManualEnv } from './support/manual-env.js';
import { productsMaster } from './support/tables.js';

type Listener = (event: { data: unknown; ports: MessagePort[]; waitUntil(p: Promise<unknown>): void; tag?: string }) => void;

let n = 0;
const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

/** A worker scope the bridge serves on, and a container whose worker delivers to it; `lose` drops the replies of the next deliveries (a worker stopped after doing the work). */
function harness(opts: { online?: boolean; cache?: MemCache; master?: TableLike } = {}) {
  const workerEnv = new ManualEnv();
  workerEnv.online = opts.online ?? true;
  const pageEnv = new ManualEnv();
  const master = productsMaster();
  const queue = new IdbQueue(`bridge-test-${++n}`);
  const table = new LiveTable(opts.master ?? master, 'products', opts.cache ?? new MemCache(), { queue, env: workerEnv });
  const listeners: Record<string, Listener[]> = {};
  const scope: WorkerScope = { addEventListener: (type: string, l: Listener) => void (listeners[type] ??= []).push(l) } as unknown as WorkerScope;
  serveLiveTables({ products: table }, { scope, metaDbName: `bridge-meta-${n}` });
  let lose = 0;
  let deliveries = 0;
  const waits: Array<Promise<unknown>> = [];
  const posted: Array<() => void> = [];
  const worker = {
    postMessage(data: unknown, [port]: MessagePort[]) {
      deliveries++;
      let reply = port!;
      if (lose > 0) {
        lose--;
        reply = new MessageChannel().port1; // answers go nowhere
      }
      for (const l of listeners.message ?? []) l({ data, ports: [reply], waitUntil: (p) => void waits.push(p) });
      posted.splice(0).forEach((r) => r());
    },
  };
  const container = { ready: Promise.resolve({ active: worker }) } as unknown as Pick<ServiceWorkerContainer, 'ready'>;
  const bridge = { container, env: pageEnv, timeoutMs: 30_000, livenessMs: 4_000 };
  cleanups.push(() => table.close());
  return {
    table, master, queue, pageEnv, workerEnv, bridge, waits,
    // Reads in the page have tests of their own (page-reads.test.ts); here every call crosses the bridge, and only calls are posted.
    products: connectLiveTable('products', { ...bridge, pageReads: false }),
    lose: (count: number) => void (lose = count),
    get deliveries() {
      return deliveries;
    },
    /** Resolves when the page has posted its next message. */
    nextPost: () => new Promise<void>((resolve) => posted.push(resolve)),
  };
}

describe('the bridge, page and worker in Node', () => {
  it('returns an offline write at once, queued, without waiting for the master (item 1)', async () => {
    const h = harness({ online: false });
    expect(await h.products.patch('a', { price: 5 })).toEqual({ id: 'a', price: 5 });
    expect(await h.table.pending()).toMatchObject([{ id: 'a', status: 'queued' }]);
    expect(h.pageEnv.nextTimerAt).toBeUndefined(); // nothing left waiting on the page
  });

  it('sends a call again after the worker went silent, and the resent write is queued once (B1, W3)', async () => {
    const h = harness({ online: false });
    h.lose(1);
    const first = h.nextPost();
    const write = h.products.insert('d', { name: 'Donut' }, { opId: 'op-d' });
    await first;
    const second = h.nextPost();
    h.pageEnv.advance(4_000);
    await second;
    expect(await write).toEqual({ id: 'd', name: 'Donut' });
    expect(h.deliveries).toBe(2);
    expect((await h.table.pending()).map((op) => op.opId)).toEqual(['op-d']);
  });

  it('fails a write the worker never answers with BridgeTimeoutError naming its op, and sending it again with that opId queues it once', async () => {
    const h = harness({ online: false });
    h.lose(100);
    const write = h.products.patch('a', { price: 7 }, { wait: 'applied' }).catch((e: unknown) => e);
    for (let i = 0; i < 10 && h.pageEnv.time < 1_000_000 + 30_000; i++) {
      const posted = h.nextPost();
      await posted;
      h.pageEnv.advance(4_000);
    }
    h.pageEnv.advance(30_000);
    const err = (await write) as BridgeTimeoutError;
    expect(err).toBeInstanceOf(BridgeTimeoutError);
    expect(err.opId).toEqual(expect.any(String));
    expect(err.message).toContain(`queued as op ${err.opId}`);
    h.lose(0);
    await h.products.patch('a', { price: 7 }, { opId: err.opId });
    expect((await h.table.pending()).map((op) => op.opId)).toEqual([err.opId]);
  });

  it('reports success for a retry or a discard resent after its answer was lost (item 6)', async () => {
    const h = harness();
    h.master.failNext = [new MasterRejectedError(422, 'validation', 'no')];
    await h.table.patch('a', { price: 1 }).catch(() => {});
    const [dead] = await h.table.deadLetters();
    h.workerEnv.online = false;
    for (const call of [() => h.products.retry(dead!.opId), () => h.products.discard(dead!.opId)]) {
      h.lose(1);
      const first = h.nextPost();
      const done = call();
      await first;
      h.pageEnv.advance(4_000);
      await expect(done).resolves.toBeUndefined();
    }
    expect(await h.table.pending()).toEqual([]);
  });

  it('names the op in a dead letter error that reaches the page', async () => {
    const h = harness();
    h.master.failNext = [new MasterRejectedError(422, 'validation', 'price must be positive')];
    const err = await h.products.patch('a', { price: -1 }, { wait: 'applied', opId: 'op-neg' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MasterRejectedError);
    expect(err).toMatchObject({ opId: 'op-neg', status: 422 });
  });

  it('stops keeping itself awake for a call once the page has given up on it (item 11)', async () => {
    const h = harness({ online: false });
    const { opId } = { opId: 'op-w' };
    await h.products.patch('a', { price: 2 }, { opId });
    // waitFor never settles offline; the page listens for 50 ms.
    void callWorker({ kind: 'call', table: 'products', method: 'waitFor', args: [opId] }, 'waitFor', { ...h.bridge, env: undefined, timeoutMs: 50 }).catch(() => {});
    await new Promise((r) => setImmediate(r));
    await Promise.all(h.waits); // without the page's patience this would never resolve
    expect((await h.table.pending()).map((op) => op.opId)).toEqual([opId]);
  });
});

describe('a script of the same origin posting its own messages (issue 13)', () => {
  /** Post a raw message as any script could, and resolve with the worker's last answer on the port (undefined if none within a turn of the loop). */
  async function post(h: ReturnType<typeof harness>, data: unknown): Promise<PortMessage | undefined> {
    const { port1, port2 } = new MessageChannel();
    const answers: PortMessage[] = [];
    port1.onmessage = ({ data }) => answers.push(data as PortMessage);
    const container = await h.bridge.container.ready;
    container.active!.postMessage(data, [port2]);
    await until(() => answers.some((a) => a.kind !== 'ack' && a.kind !== 'alive'), 50).catch(() => {});
    port1.close();
    return answers.find((a) => a.kind !== 'ack' && a.kind !== 'alive');
  }
  const v = PROTOCOL_VERSION;

  it('refuses everything but the listed table methods, and nothing changes', async () => {
    const h = harness();
    const refused = [
      { vantageLive: v, kind: 'call', table: 'products', method: 'master', args: [] }, // a property, not a method
      { vantageLive: v, kind: 'call', table: 'products', method: 'close', args: [] },
      { vantageLive: v, kind: 'call', table: 'products', method: 'ingest', args: [{ kind: 'reset' }] },
      { vantageLive: v, kind: 'call', table: 'products', method: 'constructor', args: [] },
      { vantageLive: v, kind: 'call', table: 'products', method: 'read' }, // no args array
      // Comlink's own messages: set a property, read one, walk a path
      { vantageLive: v, kind: 'call', table: 'products', message: { type: 'SET', path: ['master', 'url'], value: { type: 'RAW', value: 'https://evil.example' } } },
      { vantageLive: v, kind: 'call', table: 'products', message: { type: 'GET', path: ['queue'] } },
      { vantageLive: v, kind: 'bogus' },
    ];
    for (const data of refused) expect(await post(h, data)).toMatchObject({ kind: 'failed', error: { fields: { code: 'not_allowed' } } });
    for (const table of ['__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(await post(h, { vantageLive: v, kind: 'call', table, method: 'read', args: [] })).toMatchObject({ kind: 'failed', error: { fields: { code: 'unknown_table' } } });
    }
    // Untagged messages are another library's: not answered at all.
    expect(await post(h, { type: 'APPLY', path: ['flush'] })).toBeUndefined();
    await h.products.patch('a', { price: 3 }, { wait: 'applied' });
    expect(h.master.calls).toEqual(['patch a']); // the table still writes to its own master
  });

  it('cannot pollute the worker\'s Object.prototype through arguments', async () => {
    const h = harness();
    const row = JSON.parse('{"price": 4, "__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}') as Record<string, unknown>;
    await h.products.patch('a', row, { wait: 'applied' }).catch(() => {});
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('polluted');
  });
});

class ClosableManualStream extends ManualLiveStream {
  closed = false;
  close() {
    this.closed = true;
  }
}

describe('the change feed leader (item 10)', () => {
  const grantAll: LockManagerLike = { request: (_name, _opts, cb) => cb() };

  it('competes again after failing to lead, and reopens from the worker\'s stored id after a failed forward', async () => {
    const cache = new MemCache();
    const h = harness({ cache });
    const opened: Array<string | undefined> = [];
    const streams: ClosableManualStream[] = [];
    const leaderEnv = new ManualEnv();
    const openStream = (lastEventId: string | undefined) => {
      opened.push(lastEventId);
      const s = new ClosableManualStream();
      streams.push(s);
      return s;
    };
    // The worker refuses the first stream-resume: the leader backs off and competes again.
    h.lose(0);
    let refuse = 1;
    const locks: LockManagerLike = {
      request: (name, o, cb) => (refuse-- > 0 ? Promise.reject(new Error('worker not ready')) : grantAll.request(name, o, cb)),
    };
    const stop = hostLiveStream('products', openStream, { ...h.bridge, env: leaderEnv, locks });
    cleanups.push(stop);
    await until(() => leaderEnv.nextTimerAt !== undefined);
    leaderEnv.advance(leaderEnv.nextTimerAt! - leaderEnv.time);
    await until(() => opened.length === 1);
    const deliver = async (s: ClosableManualStream, e: LiveEvent) => s.push(e);
    await deliver(streams[0]!, { kind: 'updated', id: 'a', eventId: '5' });
    await until(async () => (await infoLastId(h)) === '5');

    // The worker fails to take in the next event: the leader closes the stream and reopens it from id 5.
    const invalidate = cache.invalidatePrefix.bind(cache);
    let failures = 1;
    await h.table.read({ page: 1 });
    cache.invalidatePrefix = async (p) => {
      if (failures-- > 0) throw new Error('disk trouble');
      return invalidate(p);
    };
    await deliver(streams[0]!, { kind: 'updated', id: 'b', eventId: '6' });
    await until(() => streams[0]!.closed && leaderEnv.nextTimerAt !== undefined);
    leaderEnv.advance(leaderEnv.nextTimerAt! - leaderEnv.time);
    await until(() => opened.length === 2);
    expect(opened).toEqual([undefined, '5']);
    await deliver(streams[1]!, { kind: 'updated', id: 'b', eventId: '6' });
    await until(async () => (await infoLastId(h)) === '6');
  });

  it('forwards the events that arrive while a call is under way as one burst: every event heard, in order, one invalidation per call', async () => {
    const cache = new MemCache();
    const h = harness({ cache });
    let invalidations = 0;
    const invalidate = cache.invalidatePrefix.bind(cache);
    cache.invalidatePrefix = (p) => (invalidations++, invalidate(p));
    const heard: string[] = [];
    h.table.subscribe((e) => void (e.type === 'live' && heard.push(e.event.eventId!)));
    const streams: ClosableManualStream[] = [];
    cleanups.push(hostLiveStream('products', () => (streams.push(new ClosableManualStream()), streams.at(-1)!), { ...h.bridge, env: new ManualEnv(), locks: grantAll }));
    await until(() => streams.length === 1);
    const ids = Array.from({ length: 50 }, (_, i) => String(i + 1));
    for (const id of ids) streams[0]!.push({ kind: 'updated', id: `r${id}`, eventId: id });
    await until(async () => (await infoLastId(h)) === '50');
    expect(heard).toEqual(ids);
    // The first event goes at once; the 49 that arrived meanwhile go together in the next call.
    expect(invalidations).toBe(2);
  });
});

describe('the events channel in a page', () => {
  it('is one channel object however many listen, every listener hearing every message, and closed when the last stops', async () => {
    const Real = globalThis.BroadcastChannel;
    const opened: BroadcastChannel[] = [];
    globalThis.BroadcastChannel = class extends Real {
      constructor(name: string) {
        super(name);
        if (name === EVENTS_CHANNEL) opened.push(this);
      }
    };
    try {
      const heard: string[] = [];
      const stops = ['a', 'b', 'c'].map((who) => subscribeTable('products', (e) => void heard.push(`${who}:${e.type}`)));
      expect(opened).toHaveLength(1);
      const worker = new Real(EVENTS_CHANNEL);
      worker.postMessage({ table: 'products', event: { type: 'invalidated', prefix: 'products/', reason: 'event' } });
      await until(async () => heard.length === 3);
      expect(heard).toEqual(['a:invalidated', 'b:invalidated', 'c:invalidated']);
      stops.forEach((stop) => stop());
      subscribeTable('products', () => {})();
      expect(opened).toHaveLength(2); // the last stop closed the first; a new listener opened another
      worker.close();
    } finally {
      globalThis.BroadcastChannel = Real;
    }
  });
});

describe('info', () => {
  it("reports each table's delivery guarantee: its RestTable adapter's, none for a table in this process", async () => {
    const info = async (h: ReturnType<typeof harness>) => ((await callWorker({ kind: 'info' }, 'info', { ...h.bridge, env: undefined })) as WorkerInfo).tables[0]!;
    expect((await info(harness({ master: new RestTable('http://127.0.0.1:9', 'products', { adapter: jsonServerAdapter }) }))).delivery).toMatch(/^at least once: /);
    expect((await info(harness({ master: new RestTable('http://127.0.0.1:9', 'products') }))).delivery).toMatch(/^exactly once: /);
    expect((await info(harness())).delivery).toBeUndefined();
  });
});

async function infoLastId(h: ReturnType<typeof harness>): Promise<string | undefined> {
  const info = (await callWorker({ kind: 'info' }, 'info', { ...h.bridge, env: undefined })) as { tables: Array<{ lastEventId?: string }> };
  return info.tables[0]!.lastEventId;
}

/** Wait for a condition by yielding to pending work, never by sleeping. */
async function until(check: () => boolean | Promise<boolean>, turns = 500): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition never held');
}
