import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext } from '@playwright/test';
import { expect, launchMaster, openDemo, test, unversioned, type Master } from './fixtures.js';

/**
 * The demo from a site of its own, so a test can deploy a new version: the page
 * is open and settled (the list's background refetch done, so chaos meets
 * writes only), and `deploy` rewrites the worker and waits for the banner.
 */
async function updatableDemo(context: BrowserContext) {
  const site = mkdtempSync(join(tmpdir(), 'vl-site-'));
  cpSync('demo-app/dist', site, { recursive: true });
  const master: Master = await launchMaster({ staticDir: site });
  const page = await openDemo(context, master.url);
  const oldVersion = (await page.evaluate(() => window.vantageInfo())).version;
  await expect(page.getByTestId('status-stale')).toHaveText('fresh');
  const deploy = async (version: string) => {
    const sw = join(site, 'sw.js');
    writeFileSync(sw, readFileSync(sw, 'utf8').replaceAll(oldVersion, version));
    await page.evaluate(async () => (await navigator.serviceWorker.getRegistration())!.update());
    await expect(page.getByTestId('update-banner')).toBeVisible();
  };
  return { master, page, oldVersion, deploy };
}

test('the page knows a new worker is waiting and activates it; the new worker flushes what the old one queued', async ({ context }) => {
  const { master, page, oldVersion, deploy } = await updatableDemo(context);
  try {
    // The master refuses the first two attempts and asks for ten minutes' rest, so the old worker goes quiet with the op queued.
    await master.chaos({ failNext: 2, failOnlyWrites: true, failStatus: 503, retryAfterSec: 600 });
    await page.evaluate(() => window.live.insert('u', { name: 'Upside-down Cake', price: 14 }, { wait: 'queued' }));
    await expect.poll(async () => (await master.api('/admin/chaos')).body.failNext).toBe(0);
    expect((await page.evaluate(() => window.live.pending())).map((op) => ('id' in op ? op.id : op.opId))).toEqual(['u']);

    await deploy('v2-e2e');
    expect((await page.evaluate(() => window.vantageInfo())).version).toBe(oldVersion);

    await Promise.all([page.waitForEvent('load'), page.getByTestId('update-reload').click()]);
    await page.evaluate(() => window.vantageReady);
    expect((await page.evaluate(() => window.vantageInfo())).version).toBe('v2-e2e');
    // The old worker would not have tried again for ten minutes: the new one sends the op when it is activated.
    await expect.poll(() => page.evaluate(async () => (await window.live.pending()).length)).toBe(0);
    expect(unversioned((await master.api('/api/products/u')).body)).toEqual({ id: 'u', name: 'Upside-down Cake', price: 14 });
    expect((await master.stats()).writes).toBe(1);
  } finally {
    await master.close();
  }
});

test('an update with 1,000 writes queued shows the app at once and sends the backlog after activation, each write once', async ({ context }) => {
  test.setTimeout(180_000);
  const { master, page, deploy } = await updatableDemo(context);
  try {
    // The old worker is told to rest ten minutes, so the whole backlog is left for the new one.
    await master.chaos({ failNext: 2, failOnlyWrites: true, failStatus: 503, retryAfterSec: 600 });
    // Fifty at a time, as a busy app would write: the page re-reads once per burst, not once per write.
    await page.evaluate(async () => {
      for (let i = 0; i < 1000; i += 50) {
        await Promise.all(Array.from({ length: 50 }, (_, j) => window.live.insert(`k${String(i + j).padStart(4, '0')}`, { name: `Backlog ${i + j}`, price: (i + j) % 50 }, { wait: 'queued' })));
      }
    });
    await expect.poll(async () => (await master.api('/admin/chaos')).body.failNext).toBe(0);
    // Each request now takes a while on the master: sending the backlog (ten batches of 100) takes far longer than a reload.
    await master.chaos({ latencyMs: 2_000 });

    await deploy('v2-backlog');
    await Promise.all([page.waitForEvent('load'), page.getByTestId('update-reload').click()]);
    await page.evaluate(() => window.vantageReady);
    const info = await page.evaluate(() => window.vantageInfo());
    expect(info.version).toBe('v2-backlog');
    // The app is up while most of the backlog is still on its way: activation did not wait for it.
    expect(info.tables[0]!.pending).toBeGreaterThan(500);

    await expect.poll(() => page.evaluate(async () => (await window.vantageInfo()).tables[0]!.pending), { timeout: 150_000 }).toBe(0);
    expect((await master.stats()).writes).toBe(1000);
    expect((await master.api('/api/products?page=1&ipp=1')).body.total).toBe(1003);
  } finally {
    await master.close();
  }
});
