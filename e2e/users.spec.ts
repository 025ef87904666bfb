/**
 * Users and sign-out (issue 12) in real Chromium against the reference master
 * in --auth mode (cookie sessions), the demo's worker keeping each user's
 * cache and queue apart. The bearer-token case (a token kept only in page
 * memory, a restarted worker asking for it) is in test/integration/users.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from '@playwright/test';
import { MasterClient } from '../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../demo-app/server/server.js';
import { expect, test } from './fixtures.js';

const USERS = { alice: 'pw-alice', bob: 'pw-bob' };
let master: RunningMaster;
const clock = { now: Date.now() };

test.beforeEach(async () => {
  clock.now = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'vl-e2e-users-'));
  master = await startMaster({ dbPath: join(dir, 'master.sqlite'), port: 0, seed: true, chaos: true, staticDir: 'demo-app/dist', heartbeatMs: 2_000, auth: { users: USERS, sessionTtlMs: 60 * 60_000 }, now: () => clock.now });
});
test.afterEach(() => master.close());

/** Open the demo, sign in through its form, and wait until the app runs for that user. */
async function signInAs(context: BrowserContext, user: keyof typeof USERS, page?: Page): Promise<Page> {
  page ??= await context.newPage();
  await page.goto(master.url);
  await page.getByTestId('sign-in-user').fill(user);
  await page.getByTestId('sign-in-password').fill(USERS[user]);
  await page.getByTestId('sign-in-submit').click();
  await page.evaluate(() => window.vantageReady);
  await expect(page.getByTestId('session-user')).toHaveText(user);
  return page;
}

async function signOutKeeping(page: Page, pending: 'keep' | 'flush' | 'discard', wipe = false): Promise<void> {
  await page.getByTestId('sign-out-pending').selectOption(pending);
  if (wipe) await page.getByTestId('sign-out-wipe').check();
  await Promise.all([page.waitForEvent('load'), page.getByTestId('sign-out').click()]);
  await expect(page.getByTestId('sign-in')).toBeVisible();
}

const rowsOf = async (user: keyof typeof USERS) => {
  const { client } = await new MasterClient(master.url).login(user, USERS[user]);
  return (await client.call('GET', '/api/products?page=1&ipp=100')).body.rows as Array<Record<string, unknown>>;
};

test('1. Bob never gets Alice\'s rows, online or offline', async ({ context }) => {
  const { client: alice } = await new MasterClient(master.url).login('alice', USERS.alice);
  await alice.call('PATCH', '/api/products/a', { name: 'Alice Pie' });
  const page = await signInAs(context, 'alice');
  await expect(page.locator('[data-id="a"]').getByTestId('row-name')).toHaveText('Alice Pie');
  await signOutKeeping(page, 'keep');

  await signInAs(context, 'bob', page);
  await expect(page.locator('[data-id="a"]').getByTestId('row-name')).toHaveText('Apple Pie');
  await context.setOffline(true);
  const offline = await page.evaluate(async () => (await window.live.read({ page: 1 })).rows.map(([, r]) => r.name));
  expect(offline).not.toContain('Alice Pie');
  // A row Bob never read is a miss offline, not Alice's cached copy.
  expect(await page.evaluate(() => window.live.readOne('a').then(() => 'served', (e: { code: string }) => e.code))).toBe('offline_miss');
});

test('2. Alice\'s offline write waits while Bob is signed in, and is applied once, in her account, when she is back', async ({ context }) => {
  const page = await signInAs(context, 'alice');
  await context.setOffline(true);
  await page.evaluate(() => window.live.insert('tart', { name: 'Alice Offline Tart', price: 7 }));
  await signOutKeeping(page, 'keep'); // still offline: the write is sealed for Alice
  await context.setOffline(false);
  const writesBefore = (await new MasterClient(master.url, master.adminToken).stats()).writes;

  await signInAs(context, 'bob', page);
  await page.evaluate(() => window.live.patch('b', { price: 1 }, { wait: 'applied' }));
  expect((await rowsOf('bob')).map((r) => r.id)).not.toContain('tart');
  expect((await rowsOf('alice')).map((r) => r.id)).not.toContain('tart');
  await signOutKeeping(page, 'keep');

  await signInAs(context, 'alice', page);
  await expect.poll(async () => (await rowsOf('alice')).filter((r) => r.id === 'tart')).toHaveLength(1);
  expect((await rowsOf('bob')).map((r) => r.id)).not.toContain('tart');
  expect((await new MasterClient(master.url, master.adminToken).stats()).writes - writesBefore).toBe(2);
});

test('3. a session that expires with ten writes queued: auth-required, no dead letters, all ten applied once after signing in again', async ({ context }) => {
  const page = await signInAs(context, 'alice');
  const writesBefore = (await new MasterClient(master.url, master.adminToken).stats()).writes;
  await context.setOffline(true);
  await page.evaluate(async () => {
    for (let i = 0; i < 10; i++) await window.live.patch(['a', 'b', 'c'][i % 3]!, { price: 100 + i });
  });
  clock.now += 2 * 60 * 60_000; // hours offline: the session expired
  await context.setOffline(false);
  await expect(page.getByTestId('status-auth')).toHaveText('auth-required');
  expect(await page.evaluate(async () => (await window.live.deadLetters()).length)).toBe(0);
  expect(await page.evaluate(async () => (await window.live.pending()).length)).toBe(10);

  await signInAs(context, 'alice', page); // the reload shows the form: the cookie session is gone
  await expect.poll(() => page.evaluate(async () => (await window.live.pending()).length)).toBe(0);
  expect((await new MasterClient(master.url, master.adminToken).stats()).writes - writesBefore).toBe(10);
  expect(Object.fromEntries((await rowsOf('alice')).map((r) => [r.id, r.price]))).toMatchObject({ a: 109, b: 107, c: 108 });
  expect(await page.evaluate(async () => (await window.live.deadLetters()).length)).toBe(0);
});

test('5. sign-out with wipe leaves none of Alice\'s data in IndexedDB, and the next call works without a reload', async ({ context }) => {
  const page = await signInAs(context, 'alice');
  await page.evaluate(() => window.live.read({ page: 1 }));
  await context.setOffline(true);
  await page.evaluate(() => window.live.patch('a', { price: 3 }));
  await context.setOffline(false);
  await page.getByTestId('sign-out-pending').selectOption('discard');
  await page.getByTestId('sign-out-wipe').check();
  await Promise.all([page.waitForEvent('load'), page.getByTestId('sign-out').click()]);
  await expect(page.getByTestId('sign-in')).toBeVisible();
  const names = await page.evaluate(async () => (await indexedDB.databases()).map((d) => d.name));
  expect(names.filter((name) => name?.includes('alice'))).toEqual([]);

  // Bob signs in on the same page, with no reload in between, and every call works.
  await page.getByTestId('sign-in-user').fill('bob');
  await page.getByTestId('sign-in-password').fill(USERS.bob);
  await page.getByTestId('sign-in-submit').click();
  await page.evaluate(() => window.vantageReady);
  expect(await page.evaluate(() => window.live.patch('c', { price: 4 }, { wait: 'applied' }))).toMatchObject({ price: 4 });
  expect((await page.evaluate(() => window.live.read({ page: 1 }))).rows.length).toBeGreaterThan(0);
});
