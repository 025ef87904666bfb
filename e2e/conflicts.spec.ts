/**
 * A conflict in the demo, in two tabs: tab A edits a row while the master is
 * down for the app, someone else changes the same row (the simulate panel),
 * the master comes back, and A's write meets the newer version. Both tabs
 * show the master's row flagged as a conflict and the dead letter with both
 * versions; each resolution ends with the master holding what was picked.
 */
import type { Page } from '@playwright/test';
import { expect, openDemo, recordEvents, test, unversioned, waitForRecorded, type Master } from './fixtures.js';

test.beforeEach(async ({ master }) => {
  await master.api('/admin/chaos/reset', { method: 'POST' });
  await master.api('/admin/seed', { method: 'POST' });
});

const row = (page: Page, id: string) => page.locator(`[data-testid=product-row][data-id="${id}"]`);
const masterRow = async (master: Master, id: string) => unversioned((await master.api(`/api/products/${id}`)).body);

async function openPanel(page: Page, testid: string): Promise<void> {
  const panel = page.getByTestId(testid);
  if (!(await panel.evaluate((el) => (el as HTMLDetailsElement).open))) await panel.locator('summary').click();
  await expect(panel).toHaveAttribute('open', '');
}

/** Tabs A and B with a conflict on row b waiting in both: A renamed it "Brioche (mine)" at 9.50, someone else renamed it on the master. Answers their name. */
async function makeConflict(a: Page, b: Page, master: Master): Promise<string> {
  await expect(row(a, 'b')).toHaveAttribute('data-state', 'settled');
  await recordEvents(b);
  await openPanel(a, 'simulate');
  await a.getByTestId('sim-down').click();
  await expect(a.getByTestId('sim-state')).toContainText('down for');

  await row(a, 'b').getByTestId('row-edit').click();
  const editor = row(a, 'b').getByTestId('row-editor');
  await editor.getByTestId('edit-name').fill('Brioche (mine)');
  await editor.getByTestId('edit-price').fill('9.5');
  await editor.getByTestId('edit-save').click();
  await expect(row(a, 'b')).toHaveAttribute('data-state', 'pending');
  // The write was made against the version A had cached: it carries it.
  const [queued] = await a.evaluate(() => window.live.pending());
  expect(queued).toMatchObject({ kind: 'patch', id: 'b', base: { version: expect.any(Number) } });

  await a.getByTestId('sim-conflict').click();
  await expect(a.getByTestId('sim-message')).toContainText('Someone else renamed b');
  // The master refuses the app's API (and this test's) while down: their name is read from what the panel said.
  const theirs = /renamed b to "([^"]+)"/.exec((await a.getByTestId('sim-message').textContent()) ?? '')?.[1] ?? '';
  expect(theirs).toMatch(/^Changed elsewhere/);

  await a.getByTestId('sim-reset').click();
  for (const tab of [a, b]) {
    await expect(row(tab, 'b')).toHaveAttribute('data-state', 'conflict');
    await expect(row(tab, 'b').getByTestId('row-name')).toHaveText(theirs);
    const dead = tab.locator('[data-testid=dead-letter][data-reason=conflict]');
    await expect(dead).toHaveCount(1);
    await expect(dead.getByTestId('conflict-mine')).toContainText('Brioche (mine)');
    await expect(dead.getByTestId('conflict-theirs')).toContainText(theirs);
  }
  await waitForRecorded(b, { type: 'conflict' });
  // Nothing was overwritten unseen.
  expect(await masterRow(master, 'b')).toEqual({ id: 'b', name: theirs, price: 8 });
  return theirs;
}

async function settledEverywhere(tabs: Page[], name: string, price: string): Promise<void> {
  for (const tab of tabs) {
    await expect(tab.getByTestId('dead-letters')).toBeHidden();
    await expect(row(tab, 'b')).toHaveAttribute('data-state', 'settled');
    await expect(row(tab, 'b').getByTestId('row-name')).toHaveText(name);
    await expect(row(tab, 'b').getByTestId('row-price')).toHaveText(price);
  }
}

test('keep mine: the edit is sent again over their version and wins', async ({ context, master }) => {
  const a = await openDemo(context, master.url);
  const b = await openDemo(context, master.url);
  await makeConflict(a, b, master);
  await b.locator('[data-testid=dead-letter][data-reason=conflict]').getByTestId('conflict-mine-keep').click();
  await settledEverywhere([a, b], 'Brioche (mine)', '9.50');
  expect(await masterRow(master, 'b')).toEqual({ id: 'b', name: 'Brioche (mine)', price: 9.5 });
});

test('keep theirs: the edit is dropped and their row stays', async ({ context, master }) => {
  const a = await openDemo(context, master.url);
  const b = await openDemo(context, master.url);
  const theirs = await makeConflict(a, b, master);
  const before = (await master.stats()).writes;
  await a.locator('[data-testid=dead-letter][data-reason=conflict]').getByTestId('conflict-theirs-keep').click();
  await settledEverywhere([a, b], theirs, '8.00');
  expect(await masterRow(master, 'b')).toEqual({ id: 'b', name: theirs, price: 8 });
  expect((await master.stats()).writes).toBe(before);
});

test('merge: their name (both changed it) with my price (only I changed it), sent once', async ({ context, master }) => {
  const a = await openDemo(context, master.url);
  const b = await openDemo(context, master.url);
  const theirs = await makeConflict(a, b, master);
  const before = (await master.stats()).writes;
  await a.locator('[data-testid=dead-letter][data-reason=conflict]').getByTestId('conflict-merge').click();
  await settledEverywhere([a, b], theirs, '9.50');
  expect(await masterRow(master, 'b')).toEqual({ id: 'b', name: theirs, price: 9.5 });
  expect((await master.stats()).writes).toBe(before + 1);
});
