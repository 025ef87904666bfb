/**
 * What every figure needs: the reference master (temp SQLite, chaos on,
 * serving the bench site), headless Debian Chromium, fresh profiles, and the
 * counters and memory probes the figures read.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { MasterClient, type ChaosSettings, type MasterStats } from '../../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../../demo-app/server/server.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../../playwright.config.js';

export type { MasterStats };

export type StorageMode = 'disk' | 'memory';

export class Harness {
  private readonly contexts = new Set<BrowserContext>();
  private readonly profiles: string[] = [];
  private readonly client: MasterClient;

  private constructor(
    readonly master: RunningMaster,
    /** Chromium's version, e.g. "156.0.8078.108". */
    readonly browserVersion: string,
    private readonly dbDir: string,
    /** Where figures 1-4, 6 and 7 measure: the bench page (no UI) or the demo itself. */
    readonly livePath: string,
    /** 'disk': every context is a persistent profile in a temp directory, as a user's browser is; 'memory': incognito contexts of one browser. */
    readonly storage: StorageMode,
    private readonly sharedBrowser: Browser | undefined,
  ) {
    this.client = new MasterClient(master.url, master.adminToken);
  }

  static async start(opts: { site: string; seedRows: number; livePath: string; storage: StorageMode }): Promise<Harness> {
    const dbDir = mkdtempSync(join(tmpdir(), 'vl-bench-db-'));
    const master = await startMaster({ dbPath: join(dbDir, 'master.sqlite'), seedRows: opts.seedRows, chaos: true, staticDir: opts.site, heartbeatMs: 2_000 });
    const browser = await chromium.launch({ headless: true, executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    const version = browser.version();
    if (opts.storage === 'disk') await browser.close();
    return new Harness(master, version, dbDir, opts.livePath, opts.storage, opts.storage === 'memory' ? browser : undefined);
  }

  get url(): string {
    return this.master.url;
  }

  async close(): Promise<void> {
    await this.closeContexts();
    await this.sharedBrowser?.close().catch(() => {});
    await this.master.close();
    for (const dir of [this.dbDir, ...this.profiles]) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 200 });
      } catch {
        // a browser process still exiting; it is a temp directory
      }
    }
  }

  // ---- the master, as another client sees it ----

  async api(path: string, init: { method?: string; body?: unknown } = {}): Promise<{ status: number; body: any }> {
    return this.client.call(init.method ?? 'GET', path, init.body);
  }

  async chaos(settings: ChaosSettings): Promise<void> {
    await this.client.chaos(settings);
  }

  async resetChaos(): Promise<void> {
    await this.client.resetChaos();
  }

  async stats(): Promise<MasterStats> {
    return this.client.stats();
  }

  async total(): Promise<number> {
    return (await this.api('/api/products?page=1&ipp=1')).body.total as number;
  }

  /** Ids starting with `prefix` among the rows appended after the master held `totalBefore` rows (a run's inserts go last). */
  async idsAppended(totalBefore: number, prefix: string): Promise<string[]> {
    const ids: string[] = [];
    const ipp = 1000;
    const totalAfter = await this.total();
    for (let p = Math.floor(totalBefore / ipp) + 1; p <= Math.ceil(totalAfter / ipp); p++) {
      const rows = (await this.api(`/api/products?page=${p}&ipp=${ipp}`)).body.rows as Array<{ id: string }>;
      for (const r of rows) if (r.id.startsWith(prefix)) ids.push(r.id);
    }
    return ids;
  }

  // ---- browser ----

  /**
   * A fresh profile: its own service worker, IndexedDB and Cache Storage. With
   * storage 'disk' it is a persistent context (its own browser process) in a
   * temp directory, so IndexedDB and Cache Storage live on disk and strict
   * durability means what it says; Playwright's ordinary contexts are
   * incognito and keep storage in memory.
   */
  async newContext(): Promise<BrowserContext> {
    let context: BrowserContext;
    if (this.sharedBrowser) {
      context = await this.sharedBrowser.newContext();
    } else {
      const profile = mkdtempSync(join(tmpdir(), 'vl-bench-profile-'));
      context = await chromium.launchPersistentContext(profile, { headless: true, executablePath: CHROMIUM, args: CHROMIUM_ARGS });
      this.profiles.push(profile);
      // A browser that just started is busy for a moment (profile setup, component loading); let it settle.
      await new Promise((r) => setTimeout(r, 1_000));
    }
    this.contexts.add(context);
    context.on('close', () => this.contexts.delete(context));
    // tsx compiles with esbuild's keepNames, which wraps named functions in `__name(fn, "name")`;
    // functions passed to page.evaluate carry those calls into the page, where the helper does not exist.
    await context.addInitScript({ content: 'globalThis.__name ??= (fn) => fn;' });
    return context;
  }

  /** Close every context a figure left open, so no stale tab keeps a change feed (and its invalidations) running. */
  async closeContexts(): Promise<void> {
    await Promise.all([...this.contexts].map((c) => c.close().catch(() => {})));
  }

  /** Open the measuring page (`livePath`) and wait until `window.live` is connected and the worker controls the page. */
  openLive(context: BrowserContext): Promise<Page> {
    return this.openDemo(context, this.livePath);
  }

  /** Open the demo (or another page with its contract) and wait until `window.live` is connected and the worker controls the page. */
  async openDemo(context: BrowserContext, path = '/'): Promise<Page> {
    const page = await this.blankPage(context);
    await page.goto(this.url + path);
    await page.evaluate(() => window.vantageReady);
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    return page;
  }

  async openPage(context: BrowserContext, path: string): Promise<Page> {
    const page = await this.blankPage(context);
    await page.goto(this.url + path);
    return page;
  }

  /** A new tab; a persistent context's first call reuses the blank tab it opened with. */
  async blankPage(context: BrowserContext): Promise<Page> {
    const unused = context.pages().find((p) => p.url() === 'about:blank' && !(p as { __benchUsed?: boolean }).__benchUsed);
    const page = unused ?? (await context.newPage());
    (page as { __benchUsed?: boolean }).__benchUsed = true;
    page.on('pageerror', (err) => console.error(`    [page error] ${err.message}`));
    return page;
  }

  // ---- memory ----

  /** JSHeapUsedSize of a page after a forced GC, via CDP Performance.getMetrics. */
  async pageHeap(page: Page): Promise<number> {
    const cdp = await page.context().newCDPSession(page);
    try {
      await cdp.send('HeapProfiler.collectGarbage');
      await cdp.send('Performance.enable');
      const { metrics } = await cdp.send('Performance.getMetrics');
      return metrics.find((m) => m.name === 'JSHeapUsedSize')?.value ?? NaN;
    } finally {
      await cdp.detach();
    }
  }

  /**
   * Used JS heap of the page's service worker (where the cache lives) after a
   * forced GC. Playwright has no CDP session for workers, so this attaches to
   * the worker's target from the page's session (non-flat mode).
   */
  async workerHeap(page: Page, scriptSuffix = '/sw.js'): Promise<number | undefined> {
    const cdp = await page.context().newCDPSession(page);
    try {
      const { targetInfo } = await cdp.send('Target.getTargetInfo');
      const { targetInfos } = await cdp.send('Target.getTargets');
      const target = targetInfos.find(
        (t) => t.type === 'service_worker' && t.browserContextId === targetInfo.browserContextId && new URL(t.url).pathname.endsWith(scriptSuffix),
      );
      if (!target) return undefined;
      const { sessionId } = await cdp.send('Target.attachToTarget', { targetId: target.targetId, flatten: false });
      let nextId = 0;
      const waiting = new Map<number, (m: { result?: any; error?: unknown }) => void>();
      cdp.on('Target.receivedMessageFromTarget', (e) => {
        if (e.sessionId !== sessionId) return;
        const m = JSON.parse(e.message) as { id?: number; result?: unknown; error?: unknown };
        if (m.id !== undefined) waiting.get(m.id)?.(m);
      });
      const call = (method: string) =>
        new Promise<{ result?: any; error?: unknown }>((resolve) => {
          const id = ++nextId;
          waiting.set(id, resolve);
          void cdp.send('Target.sendMessageToTarget', { sessionId, message: JSON.stringify({ id, method, params: {} }) });
        });
      await call('HeapProfiler.collectGarbage');
      const { result } = await call('Runtime.getHeapUsage');
      await cdp.send('Target.detachFromTarget', { sessionId }).catch(() => {});
      return result?.usedSize as number | undefined;
    } finally {
      await cdp.detach().catch(() => {});
    }
  }

  /** The origin's storage use, split by kind where Chrome reports it. */
  async storageUse(page: Page): Promise<{ usage: number; indexedDB?: number; caches?: number }> {
    return page.evaluate(async () => {
      const e = (await navigator.storage.estimate()) as StorageEstimate & { usageDetails?: { indexedDB?: number; caches?: number } };
      return { usage: e.usage ?? NaN, indexedDB: e.usageDetails?.indexedDB, caches: e.usageDetails?.caches };
    });
  }

  /** Stop every service worker of the page's context, as Chrome does to an idle one. */
  async stopServiceWorkers(page: Page): Promise<void> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('ServiceWorker.enable');
    await cdp.send('ServiceWorker.stopAllWorkers');
    await cdp.detach();
  }
}
