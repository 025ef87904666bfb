/**
 * Retake docs/screenshot.png: the demo on a desktop with rows, two writes
 * pending behind a slow master, and the inspector open.
 *
 *   npx vite build && npx tsx docs/screenshot.ts
 */
import { chromium } from '@playwright/test';
import { launchMaster } from '../e2e/fixtures.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../playwright.config.js';

const master = await launchMaster({ seedRows: 20 });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  await page.goto(master.url);
  await page.evaluate(() => window.vantageReady);
  await page.getByTestId('product-row').nth(20).waitFor();
  const inspector = page.getByTestId('inspector');
  if (!(await inspector.evaluate((el) => (el as HTMLDetailsElement).open))) await inspector.locator('summary').click();
  await master.chaos({ latencyMs: 60_000 });
  await page.evaluate(async () => {
    await window.live.insert('d', { name: 'Donut', price: 5 }, { wait: 'queued' });
    await window.live.patch('b', { price: 9.5 }, { wait: 'queued' });
  });
  await page.locator('[data-testid=product-row][data-id=d]').waitFor();
  await page.locator('[data-testid=cache-entry]').first().waitFor();
  await page.screenshot({ path: 'docs/screenshot.png' });
  console.log('wrote docs/screenshot.png');
} finally {
  await browser.close();
  await master.close();
}
