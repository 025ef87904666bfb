/**
 * The example app, built from the packed library, as a person uses it: the
 * list comes up, a reload offline still shows it, an item added offline shows
 * as pending, and back online it reaches the master once.
 */
import { expect, test } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { MasterClient } from '../../../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../../../demo-app/server/server.js';

let master: RunningMaster;
let client: MasterClient;

test.beforeAll(async () => {
  const dbPath = join(mkdtempSync(join(tmpdir(), 'vl-react-pwa-')), 'master.sqlite');
  master = await startMaster({ dbPath, port: 0, seed: true, staticDir: resolve(import.meta.dirname, '../dist') });
  client = new MasterClient(master.url, master.adminToken);
});

test.afterAll(async () => {
  await master?.close();
});

test('shows the list, reloads offline from the cache, queues a write offline and applies it once back online', async ({ context }) => {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page error] ${err.message}`));
  const list = page.getByRole('list', { name: 'products' });
  const status = page.getByTestId('status');

  await test.step('first visit', async () => {
    await page.goto(master.url);
    await expect(list.getByRole('listitem').filter({ hasText: 'Apple Pie' })).toBeVisible();
    await expect(list.getByRole('listitem').filter({ hasText: 'Cinnamon Roll' })).toBeVisible();
    await expect(status).toHaveText(/online · 0 pending · 0 dead · feed open/);
    // The worker controls the page once it is active, and it is active only once the app shell is precached.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  });

  await test.step('reload offline: the shell and the list come from the worker', async () => {
    await context.setOffline(true);
    await page.reload();
    await expect(list.getByRole('listitem').filter({ hasText: 'Brioche' })).toBeVisible();
    await expect(status).toHaveText(/^offline/);
  });

  const before = await client.stats();

  await test.step('a write made offline shows as pending', async () => {
    await page.getByLabel('name').fill('Donut');
    await page.getByLabel('price').fill('5');
    await page.getByRole('button', { name: 'Add' }).click();
    await expect(list.getByRole('listitem').filter({ hasText: 'Donut' })).toContainText('(pending)');
    await expect(status).toHaveText(/offline · 1 pending/);
  });

  await test.step('back online, the write is applied once', async () => {
    await context.setOffline(false);
    await expect(status).toHaveText(/online · 0 pending · 0 dead/);
    const donut = list.getByRole('listitem').filter({ hasText: 'Donut' });
    await expect(donut).toHaveAttribute('data-pending', 'false');
    await expect(donut).not.toContainText('(pending)');
    await expect.poll(async () => (await client.stats()).writes).toBe(before.writes + 1);
    expect((await client.rows()).filter((row) => row.name === 'Donut')).toHaveLength(1);
  });
});
