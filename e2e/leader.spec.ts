import type { Page } from '@playwright/test';
import { expect, openDemo, test } from './fixtures.js';

/**
 * Makes the page's next bridge calls of the given kinds fail, as a worker that
 * refused them would: the answer comes on the call's own port, and the worker
 * never sees the call.
 */
async function failNextCalls(page: Page, kinds: Record<string, number>): Promise<void> {
  await page.evaluate((kinds) => Object.assign((window as unknown as { __failNext: Record<string, number> }).__failNext, kinds), kinds);
}

test.beforeEach(async ({ context }) => {
  await context.addInitScript(() => {
    const w = window as unknown as { __failNext: Record<string, number> };
    w.__failNext = { 'stream-resume': 1 }; // the first attempt to lead fails
    const post = ServiceWorker.prototype.postMessage;
    ServiceWorker.prototype.postMessage = function (this: ServiceWorker, data: { kind?: string }, transfer: Transferable[]) {
      const kind = data?.kind ?? '';
      if ((w.__failNext[kind] ?? 0) > 0) {
        w.__failNext[kind]!--;
        (transfer[0] as MessagePort).postMessage({ kind: 'failed', error: { name: 'VantageError', message: 'refused by the test', fields: { code: 'injected' } } });
        return;
      }
      return post.call(this, data, transfer as never);
    } as typeof post;
  });
});

test('a tab that fails to become the change feed leader competes again and leads', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await page.waitForFunction(() => window.streamState === 'open');
  expect(await page.evaluate(() => (window as unknown as { __failNext: Record<string, number> }).__failNext['stream-resume'])).toBe(0);
});

test('an event the worker failed to take in is not lost: the leader reopens the feed from the worker\'s last id', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await page.waitForFunction(() => window.streamState === 'open');
  expect((await page.evaluate(() => window.live.readOne('b'))).source).toBe('master');
  expect((await page.evaluate(() => window.live.readOne('b'))).source).toBe('cache');

  await failNextCalls(page, { 'live-event': 1 });
  await master.api('/api/products/b', { method: 'PATCH', body: { price: 99 } });
  // The refused event comes again on the reopened feed, and the worker takes it in.
  await expect.poll(() => page.evaluate(async () => (await window.live.readOne('b')).rows[0]?.[1].price)).toBe(99);
  expect(await page.evaluate(() => (window as unknown as { __failNext: Record<string, number> }).__failNext['live-event'])).toBe(0);
});
