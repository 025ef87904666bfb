/**
 * The site the bench serves: a temporary copy of the built demo (demo-app/dist)
 * plus the bench's own pages under `/bench/`, so the reference master serves
 * all of it from one origin (its `staticDir`), the same origin as `/api`.
 *
 *   /                    the demo (its worker: /sw.js, scope /)
 *   /bench/live.html     the measuring page: window.live as the demo wires it, no UI
 *                        (bench/site/live-page.ts; controlled by the demo's /sw.js)
 *   /bench/plain.html    a page no worker controls (in a context that never
 *                        opened the demo): the raw IndexedDB floor and the
 *                        direct fetch
 *   /bench/wb/           a page controlled by the Workbox CacheFirst worker
 *   /bench/wb/sw.js      that worker, built from bench/site/workbox-sw.ts
 *   /bench/tq/           the peer: TanStack Query persisted to IndexedDB, with
 *                        offline mutations (bench/site/tanstack-page.ts; in a
 *                        context that never opened the demo, so no worker)
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'vite';

const ROOT = resolve(import.meta.dirname, '../..');
export const DEMO_DIR = join(ROOT, 'demo-app/dist');

const PLAIN_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bench: no service worker</title></head>
<body><p id="status">plain page</p></body></html>
`;

const LIVE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bench: vantage-live</title></head>
<body><p id="status">connecting</p><script type="module" src="/bench/live.js"></script></body></html>
`;

// Registers the Workbox worker for its own scope and says when it controls the page (a file of its own: the master's CSP allows no inline script).
const WORKBOX_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bench: Workbox CacheFirst</title></head>
<body><p id="status">registering</p><script src="/bench/wb/register.js"></script></body></html>
`;

const WORKBOX_REGISTER_JS = `window.benchReady = navigator.serviceWorker.register('/bench/wb/sw.js', { scope: '/bench/wb/' })
  .then(() => navigator.serviceWorker.ready)
  .then(() => navigator.serviceWorker.controller ? undefined : new Promise((r) => navigator.serviceWorker.addEventListener('controllerchange', () => r(), { once: true })))
  .then(() => { document.getElementById('status').textContent = 'controlled'; });
`;

const TANSTACK_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>bench: TanStack Query, persisted</title></head>
<body><p id="status">restoring</p><script type="module" src="/bench/tq/tq.js"></script></body></html>
`;

/** Copy the demo and build the bench pages into a fresh temporary directory; returns it. */
export async function prepareSite(): Promise<string> {
  if (!existsSync(join(DEMO_DIR, 'sw.js'))) {
    throw new Error(`${DEMO_DIR}/sw.js is missing: build the demo first (npx vite build)`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'vl-bench-site-'));
  cpSync(DEMO_DIR, dir, { recursive: true });
  mkdirSync(join(dir, 'bench/wb'), { recursive: true });
  mkdirSync(join(dir, 'bench/tq'), { recursive: true });
  writeFileSync(join(dir, 'bench/tq/index.html'), TANSTACK_HTML);
  writeFileSync(join(dir, 'bench/plain.html'), PLAIN_HTML);
  writeFileSync(join(dir, 'bench/wb/index.html'), WORKBOX_HTML);
  writeFileSync(join(dir, 'bench/wb/register.js'), WORKBOX_REGISTER_JS);
  writeFileSync(join(dir, 'bench/live.html'), LIVE_HTML);
  // Production builds (no dev logging in the measured path, as in a real deployment); the worker and the peer minified.
  const bundle = (entry: string, outDir: string, fileName: string, lib: { formats: ['es'] | ['iife']; name?: string }, minify: boolean) =>
    build({
      configFile: false,
      logLevel: 'warn',
      define: { 'process.env.NODE_ENV': JSON.stringify('production') },
      build: { outDir: join(dir, outDir), emptyOutDir: false, minify, lib: { entry: resolve(import.meta.dirname, '../site', entry), ...lib, fileName: () => fileName } },
    });
  await bundle('live-page.ts', 'bench', 'live.js', { formats: ['es'] }, false);
  await bundle('tanstack-page.ts', 'bench/tq', 'tq.js', { formats: ['es'] }, true);
  await bundle('workbox-sw.ts', 'bench/wb', 'sw.js', { formats: ['iife'], name: 'benchWorkboxWorker' }, true);
  return dir;
}
