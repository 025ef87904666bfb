/**
 * Users and sign-out (issue 12) in real Chromium against the reference master
 * in --auth mode (cookie sessions), the demo's worker keeping each user's
 * cache and queue apart. Test 4 runs the demo as a bearer-token app
 * (`?auth=bearer`): the token lives in page memory only, no cookie at all.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, CDPSession, Page, Request } from '@playwright/test';
import { MasterClient } from '../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../demo-app/server/server.js';
import { expect, recordEvents, stopServiceWorkers, test, waitForRecorded } from './fixtures.js';

const USERS = { alice: 'pw-alice', bob: 'pw-bob' };
let master: RunningMaster;
const clock = { now: Date.now() };

test.beforeEach(async () => {
  clock.now = Date.now();
  const dir = mkdtempSync(join(tmpdir(), 'vl-e2e-users-'));
  master = await startMaster({ dbPath: join(dir, 'master.sqlite'), port: 0, seed: true, chaos: true, staticDir: 'demo-app/dist', heartbeatMs: 2_000, auth: { users: USERS, sessionTtlMs: 60 * 60_000 }, now: () => clock.now });
});
test.afterEach(() => master.close());

/** Open the demo (at `path`), sign in through its form, and wait until the app runs for that user. */
async function signInAs(context: BrowserContext, user: keyof typeof USERS, page?: Page, path = '/'): Promise<Page> {
  page ??= await context.newPage();
  await page.goto(new URL(path, master.url).href);
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

/**
 * Writes the service worker sends (Playwright reports a service worker's requests too), with their bearer token
 * and how they ended: a status, 'failed', or nothing yet (a request of a worker stopped mid-flight never ends).
 */
function recordWorkerWrites(context: BrowserContext) {
  type Write = { method: string; path: string; authorization?: string; status?: number | 'failed' };
  const writes: Write[] = [];
  const entries = new Map<Request, Write[]>();
  context.on('request', (req) => {
    const url = new URL(req.url());
    if (!req.serviceWorker() || !url.pathname.startsWith('/api/') || req.method() === 'GET') return;
    const authorization = req.headers()['authorization'];
    // A batch (docs/protocol.md, "Batches") is recorded as the writes it carries, each as its own request would be.
    const batch = req.method() === 'POST' && url.pathname.endsWith('/_batch') ? (req.postDataJSON() as { ops: Array<{ method: string; id?: string }> }).ops : undefined;
    const added: Write[] = batch
      ? batch.map((op) => ({ method: op.method, path: url.pathname.replace(/\/_batch$/, op.id === undefined ? '' : `/${op.id}`), authorization }))
      : [{ method: req.method(), path: url.pathname, authorization }];
    writes.push(...added);
    entries.set(req, added);
  });
  context.on('requestfinished', (req) =>
    void req.response().then(async (res) => {
      const added = entries.get(req);
      if (!added) return;
      const results = added.length > 1 || req.url().endsWith('/_batch') ? ((await res?.json().catch(() => undefined)) as { results?: Array<{ status: number }> } | undefined)?.results : undefined;
      added.forEach((entry, i) => (entry.status = results?.[i]?.status ?? res?.status() ?? 'failed'));
    }, () => {}),
  );
  context.on('requestfailed', (req) => entries.get(req)?.forEach((entry) => (entry.status = 'failed')));
  /** The writes the master answered: method, path, status and the authorization scheme. */
  const answered = () => writes.filter((w) => typeof w.status === 'number').map((w) => `${w.method} ${w.path} ${w.status} ${w.authorization?.split(' ')[0]}`);
  return { writes, answered };
}

/** The demo's service worker registration, through CDP (Background Sync events are dispatched to it by id). */
async function registrationId(cdp: CDPSession): Promise<string> {
  const found = new Promise<string>((resolve) => {
    cdp.on('ServiceWorker.workerRegistrationUpdated', ({ registrations }) => {
      const reg = registrations.find((r) => r.scopeURL.startsWith(master.url) && !r.isDeleted);
      if (reg) resolve(reg.registrationId);
    });
  });
  await cdp.send('ServiceWorker.enable');
  return found;
}

test('4. a bearer token held only in page memory: a restarted worker asks the page for it; with every tab closed it sends nothing', async ({ context }) => {
  const { writes, answered } = recordWorkerWrites(context);
  const paused: string[] = [];
  context.on('console', (msg) => msg.text().includes('credentials needed, writes paused') && paused.push(msg.text()));
  const feeds: Array<{ url: string; authorization?: string }> = [];
  context.on('request', (req) => req.url().includes('/events') && feeds.push({ url: new URL(req.url()).pathname + new URL(req.url()).search, authorization: req.headers()['authorization'] }));
  const page = await signInAs(context, 'alice', undefined, '/?auth=bearer');
  expect(await context.cookies(master.url)).toEqual([]); // the token is in the page's memory, nowhere else
  // The change feed is read with fetch, the token in a header, not in the URL.
  await page.waitForFunction(() => window.streamState === 'open');
  expect(feeds[0]).toEqual({ url: '/api/products/events', authorization: expect.stringMatching(/^Bearer /) });
  await recordEvents(page);
  const stats = new MasterClient(master.url, master.adminToken);
  const writesBefore = (await stats.stats()).writes;

  // Queued while the master refuses connections, then the worker is stopped with them: what it knew of the token is gone.
  // (Not setOffline: a worker that starts while Playwright switches the network back can stay offline.)
  await stats.chaos({ refuseForMs: 10 * 60_000 });
  await page.evaluate(async () => {
    for (let i = 0; i < 3; i++) await window.live.patch(['a', 'b', 'c'][i]!, { price: 30 + i });
  });
  await stopServiceWorkers(page);
  await stats.chaos({ refuseForMs: 0 });
  await page.evaluate(() => window.live.flush()); // the page's next call starts the worker again
  // The restarted worker has no token: it pauses, asks the pages, this one answers, and the flush completes.
  await waitForRecorded(page, { type: 'auth', state: 'required' });
  await expect.poll(() => page.evaluate(async () => (await window.live.pending()).length)).toBe(0);
  expect(Object.fromEntries((await rowsOf('alice')).map((r) => [r.id, r.price]))).toMatchObject({ a: 30, b: 31, c: 32 });
  expect((await stats.stats()).writes - writesBefore).toBe(3);
  await expect.poll(answered).toEqual(['PATCH /api/products/a 200 Bearer', 'PATCH /api/products/b 200 Bearer', 'PATCH /api/products/c 200 Bearer']);

  // Two more, queued while the master refuses connections; then every tab of the app is closed and the worker stopped.
  await stats.chaos({ refuseForMs: 10 * 60_000 });
  await page.evaluate(async () => {
    await window.live.patch('a', { price: 40 });
    await window.live.patch('b', { price: 41 });
  });
  const blank = await context.newPage(); // not the app's: only a handle for CDP
  const cdp = await context.newCDPSession(blank);
  const registration = await registrationId(cdp);
  await page.close();
  await cdp.send('ServiceWorker.stopAllWorkers');
  await stats.chaos({ refuseForMs: 0 });
  writes.length = 0;
  paused.length = 0;

  // A Background Sync event wakes the worker with no page to ask: it finds no token and sends nothing.
  await cdp.send('ServiceWorker.dispatchSyncEvent', { origin: master.url, registrationId: registration, tag: 'vantage-live:flush', lastChance: false });
  await expect.poll(() => paused.length).toBeGreaterThan(0);
  expect(writes).toEqual([]);
  expect((await stats.stats()).writes - writesBefore).toBe(3);
  expect(Object.fromEntries((await rowsOf('alice')).map((r) => [r.id, r.price]))).toMatchObject({ a: 30, b: 31 });

  // A tab that signs in hands a token over: the two writes are applied once.
  const back = await signInAs(context, 'alice', blank, '/?auth=bearer');
  await expect.poll(() => back.evaluate(async () => (await window.live.pending()).length)).toBe(0);
  expect(Object.fromEntries((await rowsOf('alice')).map((r) => [r.id, r.price]))).toMatchObject({ a: 40, b: 41 });
  expect((await stats.stats()).writes - writesBefore).toBe(5);
  await expect.poll(answered).toEqual(['PATCH /api/products/a 200 Bearer', 'PATCH /api/products/b 200 Bearer']);
  await cdp.detach();
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
