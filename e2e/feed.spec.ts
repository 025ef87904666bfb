import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startMaster } from '../demo-app/server/server.js';
import { expect, openDemo, test } from './fixtures.js';

test('back online, the change feed reconnects at once instead of waiting out its backoff', async ({ context }) => {
  test.setTimeout(120_000);
  const opts = { dbPath: join(mkdtempSync(join(tmpdir(), 'vl-feed-')), 'master.sqlite'), seed: true, chaos: true, staticDir: 'demo-app/dist', heartbeatMs: 2_000 };
  const first = await startMaster({ ...opts, port: 0 });
  const page = await openDemo(context, first.url);
  await page.waitForFunction(() => window.streamState === 'open');
  let failed = 0;
  page.on('requestfailed', (req) => req.url().includes('/events') && failed++);

  // The network goes and the master with it: every reconnect fails, and the backoff grows to its 30 s cap.
  await context.setOffline(true);
  await first.close();
  await page.waitForFunction(() => window.streamState !== 'open');
  await expect.poll(() => failed, { timeout: 90_000 }).toBeGreaterThanOrEqual(7);
  const second = await startMaster({ ...opts, port: first.port, seed: false });
  try {
    await context.setOffline(false);
    // `online` skips the backoff: open within two seconds, where waiting it out would take up to 30.
    await page.waitForFunction(() => window.streamState === 'open', undefined, { timeout: 2_000 });
  } finally {
    await second.close();
  }
});
