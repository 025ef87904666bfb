import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import type { ClientOptions } from 'ws';
import { call, startTestMaster, wsUrl } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;
const from = (origin: string) => ({ Origin: origin });

beforeAll(async () => {
  master = await startTestMaster({ seed: true });
  base = master.url;
});
afterAll(() => master.dispose());

/** A request with headers fetch will not send (Host). */
function rawRequest(url: string, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, path, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'PUT' ? '{}' : undefined);
  });
}

it('refuses writes from a foreign origin and applies nothing', async () => {
  for (const [method, path] of [
    ['POST', '/api/products'],
    ['PUT', '/api/products/a'],
    ['PATCH', '/api/products/a'],
    ['DELETE', '/api/products/a'],
    ['DELETE', '/api/products'],
    ['POST', '/admin/seed'],
  ] as const) {
    const res = await call(base, method, path, method === 'DELETE' ? undefined : { id: 'a', price: 1 }, from('http://evil.example'));
    expect(res.status, `${method} ${path}`).toBe(403);
    expect(res.body.error.code).toBe('forbidden_origin');
  }
  expect((await call(base, 'GET', '/api/products/a')).body).toEqual({ id: 'a', name: 'Apple Pie', price: 12 });
  expect((await call(base, 'GET', '/admin/stats')).body.writes).toBe(0);
});

it('allows writes from its own origin, localhost and no Origin at all', async () => {
  expect((await call(base, 'PUT', '/api/origins/own', {}, from(base))).status).toBe(200);
  expect((await call(base, 'PUT', '/api/origins/localhost', {}, from(`http://localhost:${master.port}`))).status).toBe(200);
  expect((await call(base, 'PUT', '/api/origins/none', {})).status).toBe(200);
});

it('allows reads from any origin', async () => {
  expect((await call(base, 'GET', '/api/products', undefined, from('http://evil.example'))).status).toBe(200);
});

it('sends CORS headers to allowed origins only', async () => {
  const allowed = await call(base, 'OPTIONS', '/api/products', undefined, from(`http://localhost:${master.port}`));
  expect(allowed.headers.get('access-control-allow-origin')).toBe(`http://localhost:${master.port}`);
  expect(allowed.headers.get('access-control-allow-headers')).toMatch(/Idempotency-Key/);
  const foreign = await call(base, 'OPTIONS', '/api/products', undefined, from('http://evil.example'));
  expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
});

it('adds allowedOrigins to its own origins, and answers under their Host names', async () => {
  const custom = await startTestMaster({ allowedOrigins: ['http://localhost:5173'] });
  try {
    expect((await call(custom.url, 'PUT', '/api/t/x', {}, from('http://localhost:5173'))).status).toBe(200);
    expect((await call(custom.url, 'PUT', '/api/t/y', {}, from(custom.url))).status).toBe(200);
    expect((await call(custom.url, 'PUT', '/api/t/z', {}, from('http://localhost:5174'))).status).toBe(403);
    // A dev server's proxy keeps the page's Host.
    expect((await rawRequest(custom.url, 'GET', '/api/t', { Host: 'localhost:5173' })).status).toBe(200);
  } finally {
    await custom.dispose();
  }
});

describe('the Host header', () => {
  it('refuses every request addressed to a foreign name (DNS rebinding)', async () => {
    for (const [method, path] of [['GET', '/api/products'], ['GET', '/api/products/events'], ['PUT', '/api/products/a'], ['GET', '/admin/stats']] as const) {
      const res = await rawRequest(base, method, path, { Host: `evil.example:${master.port}` });
      expect(res.status, `${method} ${path}`).toBe(403);
      expect(JSON.parse(res.body).error.code).toBe('forbidden_host');
    }
    expect((await rawRequest(base, 'GET', '/api/products', { Host: 'localhost:1' })).status).toBe(403);
    expect((await call(base, 'GET', '/api/products/a')).body.price).toBe(12);
  });

  it('answers its own names', async () => {
    for (const host of [`127.0.0.1:${master.port}`, `localhost:${master.port}`, `LOCALHOST:${master.port}`, `[::1]:${master.port}`]) {
      expect((await rawRequest(base, 'GET', '/api/products', { Host: host })).status, host).toBe(200);
    }
  });

  it('answers names given in allowedHosts', async () => {
    const proxied = await startTestMaster({ allowedHosts: ['app.example'] });
    try {
      expect((await rawRequest(proxied.url, 'GET', '/api/t', { Host: 'app.example' })).status).toBe(200);
      expect((await rawRequest(proxied.url, 'GET', '/api/t', { Host: 'other.example' })).status).toBe(403);
    } finally {
      await proxied.dispose();
    }
  });
});

describe('WebSocket upgrades', () => {
  const refusal = (url: string, opts: ClientOptions) =>
    new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(url, opts);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('open', () => {
        ws.close();
        reject(new Error('the upgrade was accepted'));
      });
      ws.on('error', () => {});
    });

  it('refuses a feed to a page from a foreign origin', async () => {
    expect(await refusal(wsUrl(base, 'products'), { origin: 'http://evil.example' })).toBe(403);
  });

  it('refuses a feed addressed to a foreign Host', async () => {
    expect(await refusal(wsUrl(base, 'products'), { headers: { Host: `evil.example:${master.port}` } })).toBe(403);
  });

  it('opens the feed for its own origin and for clients without Origin', async () => {
    for (const opts of [{ origin: base }, {}]) {
      const ws = new WebSocket(wsUrl(base, 'products'), opts);
      await new Promise((resolve, reject) => {
        ws.once('open', resolve);
        ws.once('error', reject);
      });
      ws.close();
    }
  });
});
