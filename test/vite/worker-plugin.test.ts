/**
 * The Vite plugin on a throwaway app: `vite build` writes the worker as one
 * classic script with a stable name and the app shell's precache list in it;
 * the dev server serves the same worker, built on request, with an empty list,
 * and builds it again after a change.
 */
import { mkdtempSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build, createServer } from 'vite';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { vantageLiveWorker } from '../../src/vite.js';

let dirs: string[] = [];
afterEach(() => {
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
  dirs = [];
});

/** An app with a page and a worker that imports a module and hands its precache list to the test. */
function app(): string {
  const dir = mkdtempSync(join(tmpdir(), 'vl-vite-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'src'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>app</title><script type="module" src="/src/main.ts"></script>');
  writeFileSync(join(dir, 'src/main.ts'), "document.title = 'main';\n");
  writeFileSync(join(dir, 'src/greeting.ts'), "export const greeting = 'first';\n");
  writeFileSync(
    join(dir, 'src/sw.ts'),
    [
      "import { greeting } from './greeting';",
      'declare const self: { __WB_MANIFEST: unknown; seen: unknown };',
      'declare const __BUILD__: string;',
      'self.seen = { manifest: self.__WB_MANIFEST, greeting, build: __BUILD__ };',
    ].join('\n'),
  );
  return dir;
}

/** Run a built worker as a browser would run a classic script, and return what it saw. */
function runWorker(code: string): { manifest: Array<{ url: string; revision: string | null }>; greeting: string; build: string } {
  const self: { seen?: unknown } = {};
  runInNewContext(code, { self });
  return self.seen as never;
}

describe('vantageLiveWorker', () => {
  it('builds the worker as one classic script named sw.js, with the app shell precached', async () => {
    const dir = app();
    await build({ root: dir, configFile: false, logLevel: 'silent', define: { __BUILD__: JSON.stringify('b1') }, plugins: [vantageLiveWorker({ entry: 'src/sw.ts' })] });

    const code = readFileSync(join(dir, 'dist/sw.js'), 'utf8');
    expect(code).not.toMatch(/^\s*(import|export)\s/m);
    expect(code).not.toContain('__WB_MANIFEST');
    const seen = runWorker(code);
    expect(seen.greeting).toBe('first');
    expect(seen.build).toBe('b1');
    const mainJs = readdirSync(join(dir, 'dist/assets')).find((f) => f.endsWith('.js'));
    expect(seen.manifest.map((e) => e.url).sort()).toEqual([`assets/${mainJs}`, 'index.html']);
    expect(seen.manifest.find((e) => e.url === 'index.html')?.revision).toMatch(/\w+/);
  });

  it('names the worker as asked and leaves out what precacheIgnore lists', async () => {
    const dir = app();
    await build({
      root: dir,
      configFile: false,
      logLevel: 'silent',
      define: { __BUILD__: '"b2"' },
      plugins: [vantageLiveWorker({ entry: 'src/sw.ts', fileName: 'service-worker.js', precacheIgnore: ['assets/**'] })],
    });
    expect(runWorker(readFileSync(join(dir, 'dist/service-worker.js'), 'utf8')).manifest.map((e) => e.url)).toEqual(['index.html']);
  });

  it('serves the worker from the dev server, precaching nothing, and rebuilds it after a change', async () => {
    const dir = app();
    const server = await createServer({
      root: dir,
      configFile: false,
      logLevel: 'silent',
      define: { __BUILD__: '"dev"' },
      server: { port: 0, host: '127.0.0.1' },
      plugins: [vantageLiveWorker({ entry: 'src/sw.ts' })],
    });
    await server.listen();
    try {
      const url = `http://127.0.0.1:${(server.httpServer!.address() as AddressInfo).port}/sw.js`;
      const first = await fetch(url);
      expect(first.headers.get('content-type')).toContain('javascript');
      const code = await first.text();
      expect(code).not.toMatch(/^\s*(import|export)\s/m);
      expect(runWorker(code)).toEqual({ manifest: [], greeting: 'first', build: 'dev' });

      writeFileSync(join(dir, 'src/greeting.ts'), "export const greeting = 'second';\n");
      await vi.waitFor(async () => expect(runWorker(await (await fetch(url)).text()).greeting).toBe('second'), { timeout: 10_000, interval: 100 });
    } finally {
      await server.close();
    }
  });
});
