/**
 * Offline-ready on purpose (issue 17), in real Chromium with the real service
 * worker and IndexedDB: pinned pages read offline after a reload and are
 * refreshed in the background once invalidated; the cache keeps to its budget
 * and gives way under quota pressure while queued writes stay; prefetch
 * progress and cancellation across the bridge.
 */
import type { Page } from '@playwright/test';
import { expect, openDemo, recordEvents, stopServiceWorkers, test, waitForRecorded, type Master } from './fixtures.js';

test.beforeEach(async ({ master }) => {
  await master.api('/admin/chaos/reset', { method: 'POST' });
  await master.api('/admin/seed', { method: 'POST', body: { rows: 1100 } });
});

/** The demo without its UI (its own reads would warm the cache), with the cache's byte budget when given. */
function open(page: { context: Parameters<typeof openDemo>[0]; master: Master }, budget?: number): Promise<Page> {
  return openDemo(page.context, `${page.master.url}/?ui=off${budget ? `&budget=${budget}` : ''}`);
}

const status = (page: Page) => page.evaluate(() => window.live.offlineStatus());

test('pages 1-20 pinned online read from the cache offline after a reload; a change is refreshed in the background once online, without a read', async ({ context, master }) => {
  const page = await open({ context, master });
  const result = await page.evaluate(() => window.live.prefetch({ pages: '1-20', pin: true }));
  expect(result).toMatchObject({ done: 20, total: 20, rows: 1000, state: 'done' });
  expect((await status(page)).pins).toEqual([expect.objectContaining({ label: 'pages 1-20', pages: 20, fresh: 20, stale: 0, missing: 0 })]);

  await context.setOffline(true);
  await page.reload();
  await page.evaluate(() => window.vantageReady);
  const reads = await page.evaluate(async () => {
    const out = [];
    for (let p = 1; p <= 20; p++) {
      const r = await window.live.read({ page: p });
      out.push({ source: r.source, stale: r.stale, rows: r.rows.length });
    }
    return out;
  });
  expect(reads).toEqual(Array.from({ length: 20 }, () => ({ source: 'cache', stale: false, rows: 50 })));

  // A change on the master while this browser is offline; back online, the feed tells the worker, which refetches the pinned pages by itself.
  const firstId = (await page.evaluate(() => window.live.read({ page: 1 }))).rows[0]![0];
  await recordEvents(page);
  const changedAt = Date.now();
  expect((await master.api(`/api/products/${firstId}`, { method: 'PATCH', body: { price: 999 } })).status).toBe(200);
  await context.setOffline(false);
  await page.waitForFunction(
    async (changedAt) => {
      const pin = (await window.live.offlineStatus()).pins[0];
      return pin !== undefined && pin.fresh === 20 && (pin.oldestFetchedAt ?? 0) >= changedAt;
    },
    changedAt,
    { timeout: 30_000 },
  );
  // The events come over a BroadcastChannel, maybe after the status answer.
  await waitForRecorded(page, { type: 'refreshed', cacheKey: 'products/page_20' });
  const events = await page.evaluate(() => (window as unknown as { __events: Array<{ type: string; cacheKey?: string }> }).__events);
  expect(events.filter((e) => e.type === 'read')).toEqual([]);
  expect(events.filter((e) => e.type === 'refreshed').map((e) => e.cacheKey)).toEqual(expect.arrayContaining(['products/page_1', 'products/page_20']));
  await context.setOffline(true);
  const after = await page.evaluate(() => window.live.read({ page: 1 }));
  expect(after).toMatchObject({ source: 'cache', stale: false });
  expect(after.rows[0]![1].price).toBe(999);
  const info = await page.evaluate(() => window.vantageInfo());
  expect(info.tables[0]!.offline).toMatchObject({ pins: [expect.objectContaining({ fresh: 20 })], cache: { budgetBytes: 50 * 1024 * 1024 } });
  expect(info.storage).toMatchObject({ usage: expect.any(Number), quota: expect.any(Number), persisted: expect.any(Boolean) });
});

test('over its budget the cache drops the least recently read unpinned pages; pinned pages and every queued write stay', async ({ context, master }) => {
  const budget = 50_000;
  const page = await open({ context, master }, budget);
  await page.evaluate(() => window.live.prefetch({ pages: '1-2', pin: true }));
  await page.evaluate(() => window.live.prefetch({ pages: '3' }));
  const bytes = Object.fromEntries((await page.evaluate(() => window.live.cacheEntries())).map((e) => [e.key, e.bytes ?? 0]));
  const pageBytes = bytes['products/page_3']!;
  // Unpinned pages that fit, with a page to spare (pages differ a little in size).
  const room = Math.floor((budget - bytes['products/page_1']! - bytes['products/page_2']!) / pageBytes) - 1;
  expect(room).toBeGreaterThan(7);
  expect(2 + room + 4).toBeLessThanOrEqual(22); // every page is full (1,103 rows)
  // The master turns writes away for now: they stay queued while the cache fills.
  await master.chaos({ failNext: 1000, failOnlyWrites: true, retryAfterSec: 60 });
  await page.evaluate(async () => {
    for (const n of [1, 2, 3]) await window.live.insert(`queued-${n}`, { name: `Queued ${n}`, price: n });
  });
  const last = 2 + room;
  await page.evaluate((last) => window.live.prefetch({ pages: `4-${last}` }), last);
  expect((await status(page)).cache!.evicted).toBe(0);
  expect(await page.evaluate(() => window.live.read({ page: 3 }))).toMatchObject({ source: 'cache' }); // page 3 is now read more recently than 4 onwards
  await page.evaluate((last) => window.live.prefetch({ pages: `${last + 1}-${last + 4}` }), last);

  const entries = await page.evaluate(() => window.live.cacheEntries());
  const keys = entries.map((e) => e.key);
  expect(keys).toEqual(expect.arrayContaining(['products/page_1', 'products/page_2', 'products/page_3', `products/page_${last + 4}`]));
  expect(keys).not.toContain('products/page_4');
  expect(keys).not.toContain('products/page_5');
  expect(entries.filter((e) => e.pinned).map((e) => e.key).sort()).toEqual(['products/page_1', 'products/page_2']);
  const usage = (await status(page)).cache!;
  expect(usage.bytes).toBeLessThanOrEqual(budget);
  expect(usage.evicted).toBeGreaterThanOrEqual(2);
  expect((await page.evaluate(() => window.live.pending())).map((op) => ('id' in op ? op.id : op.opId))).toEqual(['queued-1', 'queued-2', 'queued-3']);
});

test('a QuotaExceededError on a cache put: the cache shrinks, status says so, and a write is still queued', async ({ context, master }) => {
  const page = await open({ context, master });
  await page.evaluate(() => window.live.prefetch({ pages: '1-10' }));
  expect(await page.evaluate(() => window.live.cacheEntries().then((e) => e.length))).toBe(10);
  // The browser is out of quota for cache entries from now on (the queue is another database, and untouched).
  const [worker] = context.serviceWorkers();
  await worker!.evaluate(() => {
    const put = IDBObjectStore.prototype.put;
    IDBObjectStore.prototype.put = function (this: IDBObjectStore, ...args: Parameters<IDBObjectStore['put']>) {
      if (this.name === 'entries') throw new DOMException('The quota has been exceeded.', 'QuotaExceededError');
      return put.apply(this, args);
    };
  });
  const read = await page.evaluate(() => window.live.read({ page: 11 }));
  expect(read).toMatchObject({ source: 'master', rows: expect.any(Array) });
  // Half the cache's bytes go: five or six pages of ten (pages differ a little in size).
  const left = await page.evaluate(() => window.live.cacheEntries().then((e) => e.length));
  expect(left).toBeLessThanOrEqual(5);
  expect(left).toBeGreaterThanOrEqual(4);
  expect((await status(page)).cache).toMatchObject({ entries: left, quotaPressure: { evicted: 10 - left, at: expect.any(Number) } });

  await context.setOffline(true);
  await page.evaluate(() => window.live.insert('under-pressure', { name: 'Under Pressure', price: 1 }));
  expect((await page.evaluate(() => window.live.pending())).map((op) => ('id' in op ? op.id : op.opId))).toEqual(['under-pressure']);
});

test('prefetch progress arrives in page order, and cancel stops the prefetch', async ({ context, master }) => {
  const page = await open({ context, master });
  const progress = await page.evaluate(async () => {
    const seen: string[] = [];
    await window.live.prefetch({ pages: '1-20' }, { onProgress: (e) => seen.push(`${e.done}/${e.total} ${e.state}`) });
    return seen;
  });
  expect(progress).toEqual([...Array.from({ length: 19 }, (_, i) => `${i + 1}/20 running`), '20/20 done']);

  await master.chaos({ latencyMs: 100 });
  const cancelled = await page.evaluate(async () => {
    const abort = new AbortController();
    const result = await window.live.prefetch({ pages: '21-60' }, { signal: abort.signal, onProgress: (e) => e.done === 3 && abort.abort() });
    return { result, cached: (await window.live.cacheEntries()).filter((e) => Number(e.key.split('_')[1]) > 20).length };
  });
  expect(cancelled.result).toMatchObject({ state: 'cancelled', total: 40 });
  expect(cancelled.result.done).toBeLessThan(40);
  expect(cancelled.cached).toBe(cancelled.result.done);
});

test('a worker stopped mid-prefetch: the page starts it again after a quiet spell, and its promise settles with every page cached', async ({ context, master }) => {
  const page = await open({ context, master });
  await master.chaos({ latencyMs: 150 });
  await page.evaluate(() => {
    const w = window as unknown as { __prefetch: Promise<unknown>; __done: number };
    w.__done = 0;
    w.__prefetch = window.live.prefetch({ pages: '1-20' }, { onProgress: (e) => (w.__done = e.done) });
  });
  await page.waitForFunction(() => (window as unknown as { __done: number }).__done >= 3);
  await stopServiceWorkers(page);
  await master.chaos({ latencyMs: 0 });
  const result = await page.evaluate(() => (window as unknown as { __prefetch: Promise<unknown> }).__prefetch);
  expect(result).toMatchObject({ state: 'done', done: 20, total: 20 });
  const cached = (await page.evaluate(() => window.live.cacheEntries())).map((e) => e.key);
  expect(cached).toEqual(expect.arrayContaining(Array.from({ length: 20 }, (_, i) => `products/page_${i + 1}`)));
});

test('the demo\'s "Make available offline" fills a progress bar, pins the table, and the status shows it', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await page.getByTestId('offline-make').click();
  await expect(page.getByTestId('offline-progress-label')).toHaveText('20 pages (1000 rows) kept offline');
  expect(await page.getByTestId('offline-progress').evaluate((el: HTMLProgressElement) => [el.value, el.max])).toEqual([20, 20]);
  await expect(page.getByTestId('offline-status')).toContainText('the whole table, up to 1000 rows: 20 fresh, 0 stale, 0 missing');
  await expect(page.getByTestId('offline-status')).toContainText(/storage [\d.]+ [kM]B of [\d.]+ [kM]B, (persistent|best-effort)/);
  await expect(page.getByTestId('status-cache')).toContainText('pinned 20/20 fresh');
});
