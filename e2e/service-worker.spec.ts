import { PROTOCOL_VERSION } from '../src/bridge/protocol.js';
import { expect, firstRecorded, launchPersistent, openDemo, recordEvents, stopServiceWorkers, test, unversioned, waitForRecorded } from './fixtures.js';

test.beforeEach(async ({ master }) => {
  await master.api('/admin/chaos/reset', { method: 'POST' });
  await master.api('/admin/seed', { method: 'POST' });
});

test('the worker controls the page; a list read twice is a miss, then a hit', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  expect(await page.evaluate(() => navigator.serviceWorker.controller?.scriptURL)).toBe(`${master.url}/sw.js`);
  const first = await page.evaluate(() => window.live.read({ page: 2, ipp: 2 }));
  const second = await page.evaluate(() => window.live.read({ page: 2, ipp: 2 }));
  expect(first).toMatchObject({ source: 'master', cacheKey: 'products/page_2_ipp_2', rows: [['c', { name: 'Cinnamon Roll' }]] });
  expect(second).toMatchObject({ source: 'cache', rows: first.rows });
});

test('a reload with the network off opens the app and serves the cached page, stale after an invalidation', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  expect((await page.evaluate(() => window.live.read({ page: 1 }))).rows).toHaveLength(3);
  await recordEvents(page);
  await page.waitForFunction(() => window.streamState === 'open');
  await master.api('/api/products/a', { method: 'PATCH', body: { price: 13 } });
  await waitForRecorded(page, { type: 'invalidated', reason: 'event' });
  await context.setOffline(true);
  await page.reload();
  await page.evaluate(() => window.vantageReady);
  const read = await page.evaluate(() => window.live.read({ page: 1 }));
  expect(read).toMatchObject({ source: 'cache', stale: true });
  expect(read.rows[0]![1].price).toBe(12);
  const miss = await page.evaluate(() =>
    window.live.read({ page: 9 }).catch((e) => ({ name: e.name, code: e.code, message: e.message, isVantage: e instanceof Error })),
  );
  expect(miss).toEqual({ name: 'OfflineMissError', code: 'offline_miss', message: expect.stringContaining('products/page_9'), isVantage: true });
  await context.setOffline(false);
  expect((await page.evaluate(() => window.live.read({ page: 1 }, { freshness: 'strict' }))).rows[0]![1].price).toBe(13);
});

test('stopping the worker in the middle of a read and of an awaited write: both complete, the write once', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await master.chaos({ latencyMs: 1_500 });
  const before = await master.stats();
  const reachedMaster = Promise.all([
    context.waitForEvent('request', (r) => r.url().endsWith('/api/products?page=3&ipp=1')),
    context.waitForEvent('request', (r) => r.method() === 'POST' && r.url().endsWith('/api/products')),
  ]);
  const read = page.evaluate(() => window.live.read({ page: 3, ipp: 1 }));
  const write = page.evaluate(() => window.live.insert('d', { name: 'Donut', price: 5 }, { wait: 'applied' }));
  await reachedMaster;
  await stopServiceWorkers(page);
  await master.chaos({ latencyMs: 0 });
  expect(await read).toMatchObject({ rows: [['c', { name: 'Cinnamon Roll' }]] });
  expect(unversioned(await write)).toEqual({ id: 'd', name: 'Donut', price: 5 });
  const after = await master.stats();
  expect(after.writes - before.writes).toBe(1);
  const rows = (await master.api('/api/products')).body.rows as Array<{ id: string }>;
  expect(rows.filter((r) => r.id === 'd')).toHaveLength(1);
});

test('a write made offline is acknowledged at once, survives a reload and a browser restart, and reaches the master once', async ({ master }, testInfo) => {
  const profile = testInfo.outputPath('profile');
  let context = await launchPersistent(profile);
  let page = await openDemo(context, master.url);
  await context.setOffline(true);
  const ack = await page.evaluate(async () => {
    const started = performance.now();
    const row = await window.live.insert('o', { name: 'Offline Opera Cake', price: 21 }, { wait: 'queued' });
    return { row, ms: performance.now() - started, pending: (await window.live.pending()).map((op) => ('id' in op ? op.id : op.opId)) };
  });
  expect(ack.row).toEqual({ id: 'o', name: 'Offline Opera Cake', price: 21 });
  expect(ack.pending).toEqual(['o']);
  await page.reload();
  await page.evaluate(() => window.vantageReady);
  expect((await page.evaluate(() => window.live.pending())).map((op) => ('id' in op ? op.id : op.opId))).toEqual(['o']);
  await context.close();
  expect((await master.api('/api/products/o')).status).toBe(404);

  context = await launchPersistent(profile);
  await context.setOffline(true);
  page = await openDemo(context, master.url);
  const read = await page.evaluate(() => window.live.read({ page: 1 }));
  expect(read.pendingIds).toEqual(['o']);
  expect(read.rows[0]).toEqual(['o', { id: 'o', name: 'Offline Opera Cake', price: 21 }]);
  const before = (await master.stats()).writes;
  await recordEvents(page);
  await context.setOffline(false);
  await waitForRecorded(page, { type: 'applied' });
  expect(unversioned((await master.api('/api/products/o')).body)).toEqual({ id: 'o', name: 'Offline Opera Cake', price: 21 });
  expect((await master.stats()).writes - before).toBe(1);
  expect(await page.evaluate(() => window.live.pending())).toEqual([]);
  await context.close();
});

test('a change made on the master reaches a second tab, and closing the leader tab hands the stream over', async ({ context, master }) => {
  const leader = await openDemo(context, master.url);
  await leader.waitForFunction(() => window.streamState === 'open');
  const other = await openDemo(context, master.url);
  await other.evaluate(() => window.live.get('b'));
  await recordEvents(other);

  await master.api('/api/products/b', { method: 'PATCH', body: { price: 9 } });
  await waitForRecorded(other, { type: 'invalidated', reason: 'event' });
  expect(await other.evaluate(() => window.live.readOne('b', { freshness: 'strict' }))).toMatchObject({ source: 'master', rows: [['b', { price: 9 }]] });

  await leader.close();
  await other.waitForFunction(() => window.streamState === 'open');
  await master.api('/api/products/b', { method: 'PATCH', body: { price: 10 } });
  await waitForRecorded(other, { type: 'invalidated', reason: 'event' }, 2);
  expect(await other.evaluate(() => window.live.readOne('b', { freshness: 'strict' }))).toMatchObject({ source: 'master', rows: [['b', { price: 10 }]] });
});

test('a write the master rejects shows up as a dead letter in every tab', async ({ context, master }) => {
  const [one, two] = [await openDemo(context, master.url), await openDemo(context, master.url)];
  await recordEvents(two);
  const rejected = await one.evaluate(() =>
    window.live.insert('x', { name: 'Bad', price: -1 }, { wait: 'applied', opId: 'op-bad' }).catch((e) => ({ name: e.name, status: e.status, code: e.masterCode, opId: e.opId })),
  );
  expect(rejected).toEqual({ name: 'MasterRejectedError', status: 422, code: 'validation', opId: 'op-bad' });
  await waitForRecorded(two, { type: 'dead' });
  expect(await firstRecorded(two, 'dead')).toMatchObject({ error: { status: 422, code: 'validation' } });
  for (const tab of [one, two]) {
    expect(await tab.evaluate(() => window.live.deadLetters())).toMatchObject([{ id: 'x', status: 'dead', lastError: { status: 422 } }]);
  }
  const [dead] = await two.evaluate(() => window.live.deadLetters());
  await two.evaluate((opId) => window.live.discard(opId), dead!.opId);
  expect(await one.evaluate(() => window.live.deadLetters())).toEqual([]);
});

test("a failed flush registers Background Sync, whose event sends the op without waiting out the master's Retry-After", async ({ context, master }) => {
  // ui=off: a list read by the demo's UI would take the one injected failure meant for the write.
  const page = await openDemo(context, `${master.url}/?ui=off`);
  await recordEvents(page);
  await master.chaos({ failNext: 1, failOnlyWrites: true, failStatus: 503, retryAfterSec: 600 });
  await page.evaluate(() => window.live.insert('s', { name: 'Stollen', price: 17 }, { wait: 'queued' }));
  await waitForRecorded(page, { type: 'retrying' });
  const { retryAt } = await firstRecorded<{ retryAt: number }>(page, 'retrying');
  expect(retryAt - Date.now()).toBeGreaterThan(500_000);
  await waitForRecorded(page, { type: 'applied' });
  expect((await master.api('/api/products/s')).status).toBe(200);
  expect((await master.stats()).writes).toBeGreaterThanOrEqual(1);
});

test('a page speaking another protocol version is told so, and nothing runs', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  const reply = await page.evaluate(async () => {
    const worker = (await navigator.serviceWorker.ready).active!;
    const { port1, port2 } = new MessageChannel();
    const answer = new Promise((resolve) => (port1.onmessage = (e) => resolve(e.data)));
    worker.postMessage({ vantageLive: 999, kind: 'call', table: 'products', method: 'deleteAll', args: [] }, [port2]);
    return answer;
  });
  expect(reply).toEqual({ kind: 'mismatch', workerVersion: PROTOCOL_VERSION });
  expect((await master.api('/api/products')).body.total).toBe(3);
});

test('a flush cut off by the worker being stopped resumes on its own: the page nudges the worker', async ({ context, master }) => {
  const page = await openDemo(context, `${master.url}/?ui=off`);
  await recordEvents(page);
  await master.chaos({ latencyMs: 400 });
  const before = (await master.stats()).writes;
  const ids = ['n1', 'n2', 'n3', 'n4', 'n5'];
  await page.evaluate(async (ids) => {
    for (const id of ids) await window.live.insert(id, { name: `Nougat ${id}`, price: 3 }, { wait: 'queued' });
  }, ids);
  await waitForRecorded(page, { type: 'applied' });
  await stopServiceWorkers(page);
  // No call from this page from here on: only keepFlushing's nudge can restart the worker.
  await waitForRecorded(page, { type: 'queue', pending: 0, dead: 0 });
  const rows = (await master.api('/api/products?ipp=100')).body.rows as Array<{ id: string }>;
  expect(rows.map((r) => r.id).filter((id) => id.startsWith('n'))).toEqual(ids);
  expect((await master.stats()).writes - before).toBe(ids.length);
});

test('with swr, a stale page answers from the cache at once and every tab hears when fresh rows are in', async ({ context, master }) => {
  const [one, two] = [await openDemo(context, master.url), await openDemo(context, master.url)];
  await recordEvents(two);
  expect((await one.evaluate(() => window.live.read({ page: 1 }))).stale).toBe(false);
  // The master is slow from now on, so a read that waited for it would take seconds.
  await master.chaos({ latencyMs: 3_000 });
  await master.api('/api/products/c', { method: 'PATCH', body: { price: 77 } });
  await waitForRecorded(two, { type: 'invalidated', reason: 'event' });
  // A strict read would have waited for the master and answered from it; this one answers from the cache.
  const stale = await one.evaluate(() => window.live.read({ page: 1 }));
  expect(stale).toMatchObject({ source: 'cache', stale: true, revalidating: true });
  expect(stale.rows.find(([id]) => id === 'c')?.[1]).toMatchObject({ price: 15 });
  await waitForRecorded(two, { type: 'refreshed', cacheKey: 'products/page_1' });
  const fresh = await two.evaluate(() => window.live.read({ page: 1 }));
  expect(fresh).toMatchObject({ source: 'cache', stale: false });
  expect(fresh.rows.find(([id]) => id === 'c')?.[1]).toMatchObject({ price: 77 });
});
