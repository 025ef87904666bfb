/**
 * The demo as a person uses it: clicking, typing, going offline, reloading,
 * and reading what the screen says. Everything waits on what the page shows,
 * never on the clock.
 */
import type { Page } from '@playwright/test';
import { expect, openDemo, test, unversioned, type Master } from './fixtures.js';

/** Generated rows on top of the three samples for the paging tests: 123 rows, pages of 50, 50 and 23. */
const GENERATED_ROWS = 120;

test.beforeEach(async ({ master }) => {
  await master.api('/admin/chaos/reset', { method: 'POST' });
  await master.api('/admin/seed', { method: 'POST' });
});

const row = (page: Page, id: string) => page.locator(`[data-testid=product-row][data-id="${id}"]`);

async function masterRow(master: Master, id: string): Promise<{ status: number; body: any }> {
  const answer = await master.api(`/api/products/${id}`);
  return { ...answer, body: unversioned(answer.body) };
}

async function addProduct(page: Page, fields: { id?: string; name: string; price: string }): Promise<void> {
  if (fields.id) await page.getByTestId('add-id').fill(fields.id);
  await page.getByTestId('add-name').fill(fields.name);
  await page.getByTestId('add-price').fill(fields.price);
  await page.getByTestId('add-submit').click();
}

async function editProduct(page: Page, id: string, fields: { name?: string; price?: string }): Promise<void> {
  await row(page, id).getByTestId('row-edit').click();
  const editor = row(page, id).getByTestId('row-editor');
  if (fields.name !== undefined) await editor.getByTestId('edit-name').fill(fields.name);
  if (fields.price !== undefined) await editor.getByTestId('edit-price').fill(fields.price);
  await editor.getByTestId('edit-save').click();
}

/** Open a collapsible panel (simulate, inspector) if it is closed. */
async function openPanel(page: Page, testid: string): Promise<void> {
  const panel = page.getByTestId(testid);
  if (!(await panel.evaluate((el) => (el as HTMLDetailsElement).open))) await panel.locator('summary').click();
  await expect(panel).toHaveAttribute('open', '');
}

test('the list shows the first page from the master and pages through thousands of rows', async ({ context, master }) => {
  await master.api('/admin/seed', { method: 'POST', body: { rows: GENERATED_ROWS } });
  const page = await openDemo(context, master.url);

  await expect(page.getByTestId('product-row')).toHaveCount(50);
  await expect(row(page, 'a').getByTestId('row-name')).toHaveText('Apple Pie');
  await expect(row(page, 'a').getByTestId('row-price')).toHaveText('12.00');
  // The first read comes from the master. Whether the feed's first reset lands before it (nothing to refresh) or after it
  // (swr refreshes, and the list is read again as a fresh hit) is a race, so either source is right here.
  await expect(page.getByTestId('status-source')).toHaveText(/^(master|cache)$/);
  await expect(page.getByTestId('status-stale')).toHaveText('fresh');
  await expect(page.getByTestId('status-ms')).toHaveText(/^\d+ ms$/);
  await expect(page.getByTestId('page-prev')).toBeDisabled();

  await page.getByTestId('page-next').click();
  await expect(page.getByTestId('list-meta')).toContainText('rows 51–100');
  await expect(page.getByTestId('product-row').first()).toHaveAttribute('data-id', 'p000048');
  await expect(page).toHaveURL(/#page=2$/);

  await page.getByTestId('page-next').click();
  await expect(page.getByTestId('product-row')).toHaveCount(23);
  await expect(page.getByTestId('page-next')).toBeDisabled();

  await page.getByTestId('page-prev').click();
  await expect(page.getByTestId('list-meta')).toContainText('rows 51–100');
  await expect(page.getByTestId('status-source')).toHaveText('cache');

  await page.getByTestId('page-input').fill('1');
  await page.getByTestId('page-go').click();
  await expect(page.getByTestId('product-row').first()).toHaveAttribute('data-id', 'a');
});

test('a page number being typed is not undone when the list reads again after a change', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  await page.getByTestId('page-input').fill('7');
  expect((await master.api('/api/products/a', { method: 'PATCH', body: { name: 'Apple Tart' } })).status).toBe(200);
  await expect(row(page, 'a').getByTestId('row-name')).toHaveText('Apple Tart'); // the list read page 1 again
  await expect(page.getByTestId('page-input')).toHaveValue('7');
});

test('seeding 5,000 rows from the simulate panel makes a hundred pages to scroll', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await openPanel(page, 'simulate');
  await page.getByTestId('sim-seed').click();
  await expect(page.getByTestId('sim-message')).toHaveText('The master now has 5,003 products.');
  await expect(page.getByTestId('product-row')).toHaveCount(50);
  expect(await page.evaluate(() => document.documentElement.scrollHeight > innerHeight)).toBe(true);
  await page.getByTestId('page-input').fill('101');
  await page.getByTestId('page-go').click();
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  await expect(page.getByTestId('product-row').last()).toHaveAttribute('data-id', 'p005000');
});

test('adding a row shows it at once marked pending, then settled, and it reaches the master once', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  const before = (await master.stats()).writes;
  // Offline, the write stays pending until the test brings the network back.
  await context.setOffline(true);

  await addProduct(page, { id: 'd', name: 'Donut', price: '5' });
  await expect(row(page, 'd')).toHaveAttribute('data-state', 'pending');
  await expect(row(page, 'd').getByTestId('row-state')).toHaveText('pending');
  await expect(row(page, 'd').getByTestId('row-name')).toHaveText('Donut');
  // The form is free again at once: cleared and usable while the write is on its way.
  await expect(page.getByTestId('add-name')).toHaveValue('');
  await expect(page.getByTestId('add-name')).toBeEditable();
  await expect(page.getByTestId('status-pending')).toHaveText('1');

  await context.setOffline(false);
  await expect(row(page, 'd')).toHaveAttribute('data-state', 'settled');
  await expect(page.getByTestId('status-pending')).toHaveText('0');
  expect((await masterRow(master, 'd')).body).toEqual({ id: 'd', name: 'Donut', price: 5 });
  expect((await master.stats()).writes - before).toBe(1);
});

test('adding a row without an id shows it as new until the master assigns one', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  await master.chaos({ latencyMs: 1_500 });
  await addProduct(page, { name: 'Fig Roll', price: '6' });

  const added = page.getByTestId('product-row').filter({ hasText: 'Fig Roll' });
  await expect(added).toHaveAttribute('data-state', 'pending');
  await expect(added.getByTestId('row-id')).toHaveText('new');
  await expect(added.getByTestId('row-edit')).toBeDisabled();
  await expect(added).toHaveAttribute('data-state', 'settled');
  const id = await added.getAttribute('data-id');
  expect((await masterRow(master, id!)).body).toEqual({ id, name: 'Fig Roll', price: 6 });
  await expect(added.getByTestId('row-edit')).toBeEnabled();
});

test('editing a row in place shows the change pending, then settled on the master', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await master.chaos({ latencyMs: 1_000 });
  await editProduct(page, 'b', { name: 'Brioche Deluxe', price: '9.5' });

  await expect(row(page, 'b')).toHaveAttribute('data-state', 'pending');
  await expect(row(page, 'b').getByTestId('row-name')).toHaveText('Brioche Deluxe');
  await expect(row(page, 'b').getByTestId('row-price')).toHaveText('9.50');
  await expect(row(page, 'b')).toHaveAttribute('data-state', 'settled');
  expect((await masterRow(master, 'b')).body).toEqual({ id: 'b', name: 'Brioche Deluxe', price: 9.5 });
});

test('cancelling an edit leaves the row as it was', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await row(page, 'a').getByTestId('row-edit').click();
  await row(page, 'a').getByTestId('edit-name').fill('Something else');
  await row(page, 'a').getByTestId('edit-cancel').click();
  await expect(row(page, 'a').getByTestId('row-name')).toHaveText('Apple Pie');
  await expect(page.getByTestId('status-pending')).toHaveText('0');
});

test('deleting a row hides it at once and removes it from the master', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(row(page, 'c')).toBeVisible();
  await row(page, 'c').getByTestId('row-delete').click();
  await expect(row(page, 'c')).toHaveCount(0);
  await expect(page.getByTestId('product-row')).toHaveCount(2);
  await expect.poll(async () => (await masterRow(master, 'c')).status).toBe(404);
  await expect(page.getByTestId('status-pending')).toHaveText('0');
});

test("a rejected write shows the master's reason; Discard drops it, Retry sends it again", async ({ context, master }) => {
  const page = await openDemo(context, master.url);

  await addProduct(page, { id: 'x', name: 'Bad', price: '-1' });
  const dead = page.getByTestId('dead-letter');
  await expect(dead).toHaveCount(1);
  await expect(dead.getByTestId('dead-reason')).toHaveText('422 validation: price must be a non-negative number');
  await expect(page.getByTestId('status-dead')).toHaveText('1');
  await expect(row(page, 'x')).toHaveCount(0);
  await dead.getByTestId('dead-discard').click();
  await expect(page.getByTestId('dead-letters')).toBeHidden();
  await expect(page.getByTestId('status-dead')).toHaveText('0');
  expect((await masterRow(master, 'x')).status).toBe(404);

  // Taken id: refused with 409 until the row is gone from the master, then Retry succeeds.
  await addProduct(page, { id: 'b', name: 'Second Brioche', price: '3' });
  await expect(dead.getByTestId('dead-reason')).toContainText('409 conflict');
  await expect(row(page, 'b').getByTestId('row-name')).toHaveText('Brioche');
  expect((await master.api('/api/products/b', { method: 'DELETE' })).status).toBe(204);
  await dead.getByTestId('dead-retry').click();
  await expect(page.getByTestId('dead-letters')).toBeHidden();
  await expect(row(page, 'b').getByTestId('row-name')).toHaveText('Second Brioche');
  await expect(row(page, 'b')).toHaveAttribute('data-state', 'settled');
  expect((await masterRow(master, 'b')).body).toEqual({ id: 'b', name: 'Second Brioche', price: 3 });
});

test('offline: seen pages still show, stale after an invalidation; an unseen page says why; back online it refreshes', async ({ context, master }) => {
  await master.api('/admin/seed', { method: 'POST', body: { rows: GENERATED_ROWS } });
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(50);
  await page.getByTestId('page-next').click();
  await expect(page.getByTestId('list-meta')).toContainText('rows 51–100');
  await expect(page.getByTestId('status-stream')).toHaveText('open');

  // A change on page 1 made elsewhere: page 1 is only marked stale, since page 2 is the one on screen.
  await master.api('/api/products/a', { method: 'PATCH', body: { price: 99 } });
  await expect(page.locator('[data-testid=log-entry][data-type=invalidated]').first()).toBeAttached();
  await context.setOffline(true);
  await expect(page.getByTestId('status-network')).toHaveText('offline');

  await page.getByTestId('page-prev').click();
  await expect(page.getByTestId('product-row')).toHaveCount(50);
  await expect(row(page, 'a').getByTestId('row-price')).toHaveText('12.00');
  await expect(page.getByTestId('list-stale')).toBeVisible();
  await expect(page.getByTestId('status-stale')).toHaveText('stale');
  await expect(page.getByTestId('status-source')).toHaveText('cache');

  await page.getByTestId('page-input').fill('3');
  await page.getByTestId('page-go').click();
  await expect(page.getByTestId('list-message')).toContainText('Page 3 has not been seen on this device yet');
  await expect(page.getByTestId('status-source')).toHaveText('miss (offline)');
  await expect(page.getByTestId('product-row')).toHaveCount(0);

  // A reload with the network off reopens the app, on the same page, and the seen pages are still there.
  await page.reload();
  await page.evaluate(() => window.vantageReady);
  await expect(page.getByTestId('list-message')).toContainText('Page 3 has not been seen');
  await page.getByTestId('page-prev').click();
  await expect(page.getByTestId('product-row').first()).toHaveAttribute('data-id', 'p000048');

  await context.setOffline(false);
  await expect(page.getByTestId('status-network')).toHaveText('online');
  await page.getByTestId('page-prev').click();
  await expect(row(page, 'a').getByTestId('row-price')).toHaveText('99.00');
  await expect(page.getByTestId('status-stale')).toHaveText('fresh');
  await expect(page.getByTestId('list-stale')).toHaveCount(0);
});

test('an edit made offline shows pending and reaches the master after going back online', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  await openPanel(page, 'inspector');
  await context.setOffline(true);
  await expect(page.getByTestId('status-network')).toHaveText('offline');

  await editProduct(page, 'b', { price: '11' });
  await expect(row(page, 'b')).toHaveAttribute('data-state', 'pending');
  await expect(row(page, 'b').getByTestId('row-price')).toHaveText('11.00');
  await expect(page.getByTestId('status-pending')).toHaveText('1');
  const op = page.getByTestId('queue-op');
  await expect(op.getByTestId('queue-op-label')).toHaveText('patch b');
  await expect(op.getByTestId('queue-op-status')).toHaveText('queued');
  expect((await masterRow(master, 'b')).body.price).toBe(8);

  await context.setOffline(false);
  await expect(row(page, 'b')).toHaveAttribute('data-state', 'settled');
  await expect(row(page, 'b').getByTestId('row-price')).toHaveText('11.00');
  await expect(page.getByTestId('status-pending')).toHaveText('0');
  await expect(page.getByTestId('queue-empty')).toBeVisible();
  expect((await masterRow(master, 'b')).body).toEqual({ id: 'b', name: 'Brioche', price: 11 });
});

test("the simulate panel changes the master's fault injection", async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await openPanel(page, 'simulate');
  const chaos = async () => (await master.api('/admin/chaos')).body;
  await expect(page.getByTestId('sim-state')).toHaveText('no faults: the master behaves');

  await page.getByTestId('sim-latency-1000').click();
  await expect(page.getByTestId('sim-state')).toHaveText('1000 ms latency');
  expect(await chaos()).toMatchObject({ latencyMs: 1_000 });
  await expect(page.getByTestId('sim-latency-1000')).toHaveAttribute('aria-pressed', 'true');
  await page.getByTestId('sim-latency-0').click();
  await expect(page.getByTestId('sim-state')).toHaveText('no faults: the master behaves');

  await page.getByTestId('sim-fail').click();
  await expect(page.getByTestId('sim-state')).toContainText('fail with 503 (Retry-After 2 s)');
  expect(await chaos()).toMatchObject({ failNext: 3, failStatus: 503, retryAfterSec: 2 });

  await page.getByTestId('sim-drop').click();
  await expect(page.getByTestId('sim-state')).toContainText('dropped after commit');
  expect(await chaos()).toMatchObject({ dropAfterCommit: 1 });

  await page.getByTestId('sim-down').click();
  await expect(page.getByTestId('sim-state')).toContainText('down for');
  expect((await chaos()).refuseForMs).toBeGreaterThan(10_000);

  await page.getByTestId('sim-pause-feed').click();
  await expect(page.getByTestId('sim-pause-feed')).toHaveText('Resume the feed');
  expect(await chaos()).toMatchObject({ pauseFeed: true });
  await page.getByTestId('sim-pause-feed').click();
  await expect(page.getByTestId('sim-pause-feed')).toHaveText('Pause the feed');
  expect(await chaos()).toMatchObject({ pauseFeed: false });

  await page.getByTestId('sim-reset').click();
  await expect(page.getByTestId('sim-state')).toHaveText('no faults: the master behaves');
  expect(await chaos()).toEqual({ latencyMs: 0, failNext: 0, failOnlyWrites: false, failStatus: 503, retryAfterSec: 1, dropAfterCommit: 0, pauseFeed: false, refuseForMs: 0 });
});

test('a change made directly on the master shows in the list through the live feed', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await openPanel(page, 'simulate');
  await expect(page.getByTestId('status-stream')).toHaveText('open');
  const before = (await master.stats()).writes;
  await page.getByTestId('sim-master-edit').click();
  await expect(page.getByTestId('sim-message')).toContainText('on the master');
  const [, id, price] = /\((\w+)\) to ([\d.]+)/.exec((await page.getByTestId('sim-message').textContent()) ?? '') ?? [];
  expect((await masterRow(master, id!)).body.price.toFixed(2)).toBe(price);
  await expect(row(page, id!).getByTestId('row-price')).toHaveText(price!);
  await expect(page.locator('[data-testid=log-entry][data-tag=live]').first()).toContainText(`updated ${id}`);
  expect((await master.stats()).writes - before).toBe(1);
});

test('the inspector shows the queue with retries, the cache keys, and every event', async ({ context, master }) => {
  const page = await openDemo(context, master.url);
  await expect(page.getByTestId('product-row')).toHaveCount(3);
  await openPanel(page, 'inspector');
  await expect(page.getByTestId('queue-empty')).toBeVisible();
  await expect(page.locator('[data-testid=cache-entry][data-key="products/page_1"] td').nth(1)).toHaveText('3');

  // The first attempt gets a 503; the second one goes through.
  // A slow master keeps the second attempt on screen long enough to read.
  await master.chaos({ failNext: 1, failOnlyWrites: true, failStatus: 503, retryAfterSec: 2, latencyMs: 1_500 });
  await addProduct(page, { id: 'e', name: 'Eclair', price: '4' });
  const op = page.getByTestId('queue-op');
  await expect(op.getByTestId('queue-op-label')).toHaveText('insert e');
  await expect(op.getByTestId('queue-op-attempts')).toHaveText('1');
  await expect(op.getByTestId('queue-op-error')).toContainText('503');
  await expect(page.locator('[data-testid=log-entry][data-tag=retry]')).toContainText('insert e');

  await expect(page.getByTestId('queue-empty')).toBeVisible();
  await expect(row(page, 'e')).toHaveAttribute('data-state', 'settled');
  const log = page.getByTestId('event-log');
  await expect(log.locator('[data-tag=enqueue]')).toContainText('insert e name: Eclair, price: 4');
  await expect(log.locator('[data-tag=applied]')).toContainText('insert e');
  await expect(log.locator('[data-tag=invalidated]').first()).toContainText('products/*');
  await expect(log.locator('[data-tag=hit]').first()).toContainText('products/page_1');
  await expect(log.locator('[data-tag=miss]').first()).toContainText('products/page_1');
  await expect(page.getByTestId('inspector-worker')).toContainText('IdbQueue');
});

test.describe('on a phone', () => {
  test.use({ viewport: { width: 375, height: 740 } });

  test('nothing overflows sideways, with every panel open and a row being edited', async ({ context, master }) => {
    const page = await openDemo(context, master.url);
    await expect(page.getByTestId('product-row')).toHaveCount(3);
    await addProduct(page, { id: 'a-rather-long-identifier-for-a-narrow-screen', name: 'A name long enough to need an ellipsis on a phone', price: '-1' });
    await expect(page.getByTestId('dead-letter')).toHaveCount(1);
    await openPanel(page, 'simulate');
    await openPanel(page, 'inspector');
    await row(page, 'a').getByTestId('row-edit').click();
    await expect(row(page, 'a').getByTestId('row-editor')).toBeVisible();
    await expect(page.getByTestId('status-bar')).toBeInViewport();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    expect(overflow).toBe(0);
  });
});
