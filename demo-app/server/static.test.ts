import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_CSP } from './security-headers.js';
import { call, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

const root = mkdtempSync(join(tmpdir(), 'vantage-static-'));
let master: TestMaster;

// fetch normalises `..` away, so traversal attempts go out raw.
function rawGet(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { path }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const site = join(root, 'site');
  mkdirSync(join(site, 'assets'), { recursive: true });
  writeFileSync(join(root, 'secret.txt'), 'outside the root');
  writeFileSync(join(site, '.env'), 'hidden');
  const files: Record<string, string> = {
    'index.html': '<!doctype html><title>demo</title>',
    'sw.js': 'self.addEventListener("fetch", () => {});',
    'assets/app.js': 'console.log(1);',
    'assets/app.mjs': 'export {};',
    'assets/app.css': 'body{}',
    'assets/app.js.map': '{}',
    'data.json': '{}',
    'manifest.webmanifest': '{}',
    'icon.svg': '<svg/>',
    'icon.png': 'png',
    'favicon.ico': 'ico',
    'robots.txt': 'ok',
  };
  for (const [name, text] of Object.entries(files)) writeFileSync(join(site, name), text);
  master = await startTestMaster({ staticDir: site });
});
afterAll(async () => {
  await master.dispose();
  rmSync(root, { recursive: true, force: true });
});

it('serves index.html at / without caching', async () => {
  const res = await fetch(`${master.url}/`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(res.headers.get('cache-control')).toBe('no-cache');
  expect(await res.text()).toContain('<title>demo</title>');
});

it('serves each file type with its content type', async () => {
  const expected: Record<string, RegExp> = {
    '/sw.js': /^text\/javascript/,
    '/assets/app.js': /^text\/javascript/,
    '/assets/app.mjs': /^text\/javascript/,
    '/assets/app.css': /^text\/css/,
    '/data.json': /^application\/json/,
    '/manifest.webmanifest': /^application\/manifest\+json$/,
    '/icon.svg': /^image\/svg\+xml$/,
    '/icon.png': /^image\/png$/,
    '/favicon.ico': /^image\/x-icon$/,
    '/robots.txt': /^text\/plain/,
  };
  for (const [path, type] of Object.entries(expected)) {
    const res = await fetch(master.url + path);
    expect(res.status, path).toBe(200);
    expect(res.headers.get('content-type'), path).toMatch(type);
  }
});

it('marks only sw.js and index.html as no-cache', async () => {
  expect((await fetch(`${master.url}/sw.js`)).headers.get('cache-control')).toBe('no-cache');
  expect((await fetch(`${master.url}/assets/app.js`)).headers.get('cache-control')).toBeNull();
});

it('does not serve source maps', async () => {
  for (const path of ['/assets/app.js.map', '/assets/app.js.MAP']) expect((await fetch(master.url + path)).status, path).toBe(404);
});

it('sends CSP, nosniff, frame and referrer protection with every file', async () => {
  for (const path of ['/', '/assets/app.js', '/icon.svg']) {
    const headers = (await fetch(master.url + path)).headers;
    expect(headers.get('content-security-policy'), path).toBe(DEFAULT_CSP);
    expect(headers.get('content-security-policy'), path).toMatch(/frame-ancestors 'none'/);
    expect(headers.get('content-security-policy'), path).toMatch(/script-src 'self'(;|$)/);
    expect(headers.get('x-content-type-options'), path).toBe('nosniff');
    expect(headers.get('x-frame-options'), path).toBe('DENY');
    expect(headers.get('referrer-policy'), path).toBe('no-referrer');
  }
});

it('locks API answers down harder: no CSP source at all', async () => {
  for (const path of ['/api/products', '/api/products/nope']) {
    const headers = (await fetch(master.url + path)).headers;
    expect(headers.get('content-security-policy'), path).toBe("default-src 'none'; frame-ancestors 'none'");
    expect(headers.get('x-content-type-options'), path).toBe('nosniff');
  }
});

it('takes another page CSP from the options', async () => {
  const loose = await startTestMaster({ staticDir: join(root, 'site'), contentSecurityPolicy: "default-src 'self' 'unsafe-inline'" });
  try {
    expect((await fetch(`${loose.url}/`)).headers.get('content-security-policy')).toBe("default-src 'self' 'unsafe-inline'");
  } finally {
    await loose.dispose();
  }
});

it('404s missing files, directories and dotfiles', async () => {
  for (const path of ['/missing.js', '/assets', '/.env']) {
    expect((await fetch(master.url + path)).status, path).toBe(404);
  }
});

it('does not escape the root', async () => {
  for (const path of ['/../secret.txt', '/assets/../../secret.txt', '/%2e%2e/secret.txt', '/..%2fsecret.txt', '/assets%2f..%2f..%2fsecret.txt']) {
    expect(await rawGet(master.url, path), path).toBe(404);
  }
});

it('still routes /api and /admin, and refuses writes to files', async () => {
  expect((await call(master.url, 'GET', '/api/products')).status).toBe(200);
  expect((await call(master.url, 'GET', '/admin/stats')).status).toBe(200);
  expect((await call(master.url, 'POST', '/index.html', {})).status).toBe(405);
});
