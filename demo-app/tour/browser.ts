/**
 * The tour's stage: the reference master serving the built demo on a fixed
 * port (the origin owns the cache and the queue, so it must not change
 * between runs), and Debian's Chromium with a persistent profile, so the
 * cache and the queue survive between invocations like the Rust demo's
 * `--cache PATH`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { chromium, type BrowserContext, type Page } from '@playwright/test';
import { MasterClient } from '../server/client.js';
import { startMaster, type RunningMaster } from '../server/server.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../../playwright.config.js';

export interface StageOptions {
  master: string;
  profile: string;
  port: number;
  cache: string;
  headed: boolean;
  /** Called with every table event the page hears, as it arrives. */
  onEvent?: (event: TableEvent) => void;
}

export type TableEvent = { type: string } & Record<string, unknown>;

export interface Stage {
  master: RunningMaster;
  context: BrowserContext;
  page: Page;
  /** Call the master directly, as another client would. */
  api(path: string, init?: { method?: string; body?: unknown }): Promise<any>;
  /**
   * A promise for the next table event that matches, listening from now on: call it
   * before causing the event. Resolves with the event and when Node heard it.
   */
  nextEvent(match: (event: TableEvent) => boolean): Promise<{ event: TableEvent; at: number }>;
  /** Open (or reopen) the demo and wait until `window.live` is connected. */
  open(): Promise<void>;
  close(): Promise<void>;
}

/** Build the demo if demo-app/dist is missing, so a fresh clone needs no other step. */
export function ensureBuilt(): void {
  if (existsSync('demo-app/dist/sw.js')) return;
  console.log('building the demo (first run)…');
  execFileSync(process.execPath, ['node_modules/vite/bin/vite.js', 'build', '--logLevel', 'warn'], { stdio: 'inherit' });
}

export async function startStage(opts: StageOptions): Promise<Stage> {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not at ${CHROMIUM}: run "npm run setup" (apt-get install chromium), or set CHROMIUM_PATH`);
  ensureBuilt();
  mkdirSync(dirname(opts.master), { recursive: true });
  const master = await startMaster({ dbPath: opts.master, port: opts.port, chaos: true, staticDir: 'demo-app/dist' });
  const context = await chromium.launchPersistentContext(opts.profile, { headless: !opts.headed, executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  // Hear every table event from the first moment, the way the demo's inspector does.
  await context.addInitScript(() => {
    // Table events only: the channel also carries who is signed in (`session`), for pages' own reads.
    new BroadcastChannel('vantage-live:events').onmessage = ({ data }) => 'event' in data && console.debug(`vantage-live-event ${JSON.stringify(data.event)}`);
  });
  const page = context.pages()[0] ?? (await context.newPage());
  const waiters = new Set<{ match: (e: TableEvent) => boolean; resolve: (heard: { event: TableEvent; at: number }) => void }>();
  page.on('console', (msg) => {
    const text = msg.text();
    if (!text.startsWith('vantage-live-event ')) return;
    const event = JSON.parse(text.slice('vantage-live-event '.length)) as TableEvent;
    opts.onEvent?.(event);
    for (const waiter of waiters) {
      if (!waiter.match(event)) continue;
      waiters.delete(waiter);
      waiter.resolve({ event, at: Date.now() });
    }
  });
  const nextEvent: Stage['nextEvent'] = (match) => new Promise((resolve) => waiters.add({ match, resolve }));
  // Headless, the app stays unmounted so that only the tour reads; headed, a person sees the app (whose reads warm the cache too).
  const query = new URLSearchParams({ ...(opts.headed ? {} : { ui: 'off' }), ...(opts.cache === 'idb' ? {} : { cache: opts.cache }) });
  const client = new MasterClient(master.url, master.adminToken);
  const api: Stage['api'] = async (path, init = {}) => {
    const reply = await client.call(init.method ?? 'GET', path, init.body);
    if (reply.status >= 400) throw new Error(`${init.method ?? 'GET'} ${path}: ${reply.status} ${JSON.stringify(reply.body)}`);
    return reply.body;
  };
  const open = async () => {
    await page.goto(`${master.url}/?${query}`);
    await page.evaluate(() => window.vantageReady);
    // A different cache backend is a different worker script. Not swapped with skipWaiting: Chromium lets the new one
    // take over only once the old one reports idle, which a worker Playwright watches may not do for minutes. Instead
    // the old registration is removed, which completes as soon as no page uses it, and the app registers the new one.
    const script = `${master.url}/sw.js${opts.cache === 'idb' ? '' : `?cache=${opts.cache}`}`;
    const other = await page.evaluate(async (script) => {
      const reg = await navigator.serviceWorker.getRegistration();
      return reg?.active?.scriptURL !== script && (await reg!.unregister());
    }, script);
    if (other) {
      await page.goto('about:blank');
      await page.goto(`${master.url}/?${query}`);
      await page.evaluate(() => window.vantageReady);
      await page.waitForFunction((script) => navigator.serviceWorker.controller?.scriptURL === script, script);
    }
    // Every command runs with the change feed up, so what the master does reaches the tab.
    await page.waitForFunction(() => window.streamState === 'open');
  };
  await open();
  return {
    master,
    context,
    page,
    api,
    nextEvent,
    open,
    close: async () => {
      await context.close();
      await master.close();
    },
  };
}
