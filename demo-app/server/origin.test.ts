import { afterAll, beforeAll, expect, it } from 'vitest';
import { call, startTestMaster } from './testkit.js';
import type { TestMaster } from './testkit.js';

let master: TestMaster;
let base: string;
const from = (origin: string) => ({ Origin: origin });

beforeAll(async () => {
  master = await startTestMaster({ seed: true });
  base = master.url;
});
afterAll(() => master.dispose());

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

it('honours a custom allowedOrigins list', async () => {
  const custom = await startTestMaster({ allowedOrigins: ['https://app.example'] });
  try {
    expect((await call(custom.url, 'PUT', '/api/t/x', {}, from('https://app.example'))).status).toBe(200);
    expect((await call(custom.url, 'PUT', '/api/t/y', {}, from(custom.url))).status).toBe(403);
  } finally {
    await custom.dispose();
  }
});
