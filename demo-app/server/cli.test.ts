import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { call } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'vantage-master-cli-'));
const main = fileURLToPath(new URL('./main.ts', import.meta.url));
// The repository root, where `--import tsx` resolves.
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runCli(args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const url = new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      const found = /vantage-live master listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (found?.[1] !== undefined) resolve(found[1]);
    });
    child.once('exit', (code) => reject(new Error(`exited with ${code}: ${output}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, exited };
}

it('serves until SIGTERM, then exits cleanly keeping committed writes', async () => {
  const db = join(dir, 'cli.sqlite');
  const first = runCli(['--port', '0', '--db', db, '--seed']);
  const url = await first.url;
  expect((await call(url, 'GET', '/api/products')).body.total).toBe(3);
  expect((await call(url, 'PUT', '/api/products/z', { price: 1 })).status).toBe(200);
  first.child.kill('SIGTERM');
  expect(await first.exited).toBe(0);

  const second = runCli(['--port', '0', '--db', db]);
  const again = await second.url;
  expect((await call(again, 'GET', '/api/products/z')).body).toEqual({ id: 'z', price: 1 });
  second.child.kill('SIGINT');
  expect(await second.exited).toBe(0);
});

it('rejects bad arguments', async () => {
  const bad = runCli(['--port', 'abc']);
  bad.url.catch(() => {});
  expect(await bad.exited).toBe(2);
});
