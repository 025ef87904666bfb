/**
 * Fixtures of the browser tests: a real reference master on loopback with a
 * fresh SQLite file, serving the built demo (demo-app/dist), and pages that have
 * waited for the service worker to connect.
 */
import { test as base, chromium, expect, type BrowserContext, type Page } from '@playwright/test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MasterClient, type ChaosSettings, type MasterStats } from '../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../demo-app/server/server.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../playwright.config.js';

export interface Master extends RunningMaster {
  /** Call the master directly, as another client would. */
  api(path: string, init?: { method?: string; body?: unknown }): Promise<{ status: number; body: any }>;
  chaos(settings: ChaosSettings): Promise<void>;
  stats(): Promise<MasterStats>;
}

/** A row as the master sent it, without its `_version` (docs/protocol.md, "Versions"): for comparing the fields a test wrote. */
export function unversioned<T>(row: T): T {
  if (typeof row !== 'object' || row === null) return row;
  const { _version: _v, ...fields } = row as Record<string, unknown>;
  return fields as T;
}

export async function launchMaster(opts: { seedRows?: number; staticDir?: string } = {}): Promise<Master> {
  const dir = mkdtempSync(join(tmpdir(), 'vl-e2e-'));
  const staticDir = opts.staticDir ?? 'demo-app/dist';
  const running = await startMaster({ dbPath: join(dir, 'master.sqlite'), seed: true, seedRows: opts.seedRows, chaos: true, staticDir, heartbeatMs: 2_000 });
  const client = new MasterClient(running.url, running.adminToken);
  return {
    ...running,
    api: (path, init = {}) => client.call(init.method ?? 'GET', path, init.body),
    chaos: (settings) => client.chaos(settings),
    stats: () => client.stats(),
  };
}

/**
 * Open the demo and wait until `window.live` is connected, the worker controls
 * the page, and the worker holds a resume point of the change feed: a first
 * connection is told the head as a reset, which marks the cache stale, so a
 * test that starts earlier would race that invalidation.
 */
export async function openDemo(context: BrowserContext, url: string): Promise<Page> {
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[page error] ${err.message}`));
  await page.goto(url);
  await page.evaluate(() => window.vantageReady);
  await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
  await page.waitForFunction(async () => (await window.vantageInfo()).tables.every((t) => t.lastEventId !== undefined));
  return page;
}

/** Start recording the page's table events into `window.__events`, before anything that may cause them. */
export async function recordEvents(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { __events: unknown[] };
    w.__events = [];
    window.live.subscribe((e) => w.__events.push(e));
  });
}

/** Wait until the page has recorded `count` events matching `match` (a partial event). */
export async function waitForRecorded(page: Page, match: Record<string, unknown>, count = 1): Promise<void> {
  await page.waitForFunction(
    ({ match, count }) => {
      const events = (window as unknown as { __events: Array<Record<string, unknown>> }).__events;
      return events.filter((e) => Object.entries(match).every(([k, v]) => JSON.stringify(e[k]) === JSON.stringify(v))).length >= count;
    },
    { match, count },
  );
}

/** The first recorded event of a type. */
export function firstRecorded<T = Record<string, unknown>>(page: Page, type: string): Promise<T> {
  return page.evaluate((type) => (window as unknown as { __events: Array<{ type: string }> }).__events.find((e) => e.type === type), type) as Promise<T>;
}

/** Stop every service worker of the context, as Chrome does to an idle one. */
export async function stopServiceWorkers(page: Page): Promise<void> {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('ServiceWorker.enable');
  await cdp.send('ServiceWorker.stopAllWorkers');
  await cdp.detach();
}

export function launchPersistent(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, { headless: true, executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export const test = base.extend<{}, { master: Master }>({
  master: [
    async ({}, use) => {
      const master = await launchMaster();
      await use(master);
      await master.close();
    },
    { scope: 'worker' },
  ],
});

export { expect };
