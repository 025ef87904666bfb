import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, expect, it } from 'vitest';
import { call, newTestDatabase } from './testkit.js';

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
  const token = new Promise<string>((resolve) => {
    child.stdout.on('data', () => {
      const found = /admin token: (\S+)/.exec(output);
      if (found?.[1] !== undefined) resolve(found[1]);
    });
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, url, token, exited };
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

/** Runs the CLI to its exit; resolves with the exit code and what it printed. */
async function runToExit(args: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  child.stdout.resume();
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { code, stderr };
}

/** One line, no stack trace. */
const oneLine = (text: string) => {
  expect(text.trim().split('\n'), text).toHaveLength(1);
  expect(text).not.toMatch(/^\s+at /m);
};

it('answers every bad argument with one line saying what to do, exit 2', async () => {
  for (const [args, says] of [
    [['--port', 'abc'], /--port must be an integer/],
    [['--port', '70000'], /--port must be an integer from 0 to 65535/],
    [['--bogus'], /unknown option --bogus/],
    [['--port'], /--port needs a value/],
    [['stray'], /unexpected argument stray/],
    [['--allowed-origin', 'http://dev.example/path'], /--allowed-origin must be scheme:\/\/host\[:port\]/],
    [['--allowed-origin', 'nope'], /--allowed-origin must look like/],
    [['--allowed-host', 'a/b'], /--allowed-host must be a host name/],
    [['--admin-token', 'short'], /--admin-token must be at least 16/],
    [['--max-connections', '0'], /--max-connections must be an integer of at least 1/],
    [['--pg', 'mysql://db/x'], /--pg must be a URL like postgres:\/\//],
    [['--pg', 'postgres://db/x', '--db', 'x.sqlite'], /pass --db \(SQLite\) or --pg \(PostgreSQL\), not both/],
  ] as const) {
    const { code, stderr } = await runToExit([...args]);
    expect(code, args.join(' ')).toBe(2);
    expect(stderr, args.join(' ')).toMatch(says);
    oneLine(stderr);
  }
}, 60_000);

it('answers every bad auth argument with one line saying what to do, exit 2', async () => {
  const cases = [
    [['--auth'], /--auth needs --users NAME:PASSWORD,... or --users-file PATH/],
    [['--users', 'alice:pw'], /--users needs --auth/],
    [['--session-ttl', '5m'], /--session-ttl needs --auth/],
    [['--auth', '--users', 'alice'], /--users: "alice" is not name:password/],
    [['--auth', '--users', 'alice:'], /--users: user "alice" has an empty password/],
    [['--auth', '--users', 'a:1,a:2'], /--users: user "a" is listed twice/],
    [['--auth', '--users', 'bad name:pw'], /--users: user name "bad name" must be/],
    [['--auth', '--users', 'a:1', '--users-file', 'x'], /pass --users or --users-file, not both/],
    [['--auth', '--users-file', join(dir, 'no-such-users')], /--users-file .*no-such-users: no such file/],
    [['--auth', '--users', 'a:1', '--session-ttl', 'soon'], /--session-ttl must be a duration like 500ms, 30s, 5m, 12h or 7d/],
    [['--auth', '--users', 'a:1', '--session-ttl', '0'], /--session-ttl must be a duration/],
    [['--auth', '--users', 'a:1', '--session-ttl', '400d'], /--session-ttl must be a duration/],
  ] as const;
  // In parallel: each run is a Node start-up, and there are many.
  const results = await Promise.all(cases.map(([args]) => runToExit(['--port', '0', '--db', join(dir, 'bad-auth.sqlite'), ...args])));
  cases.forEach(([args, says], i) => {
    const { code, stderr } = results[i]!;
    expect(code, args.join(' ')).toBe(2);
    expect(stderr, args.join(' ')).toMatch(says);
    oneLine(stderr);
  });
}, 60_000); // a dozen Node start-ups on a busy machine

it('says in one line that the port is in use, exit 1', async () => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  try {
    const port = (taken.address() as AddressInfo).port;
    const { code, stderr } = await runToExit(['--port', String(port), '--db', join(dir, 'busy.sqlite')]);
    expect(code).toBe(1);
    expect(stderr).toMatch(new RegExp(`port ${port} is in use.*--port`));
    oneLine(stderr);
  } finally {
    taken.close();
  }
});

it('--pg: serves the protocol from a PostgreSQL database', async () => {
  const running = runCli(['--port', '0', '--pg', await newTestDatabase(), '--seed']);
  const url = await running.url;
  expect((await call(url, 'GET', '/api/products')).body.total).toBe(3);
  expect((await call(url, 'PUT', '/api/products/z', { price: 1 })).status).toBe(200);
  running.child.kill('SIGTERM');
  expect(await running.exited).toBe(0);
});

it('says in one line that PostgreSQL cannot be reached, exit 1', async () => {
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((resolve) => closed.close(resolve));
  const { code, stderr } = await runToExit(['--port', '0', '--pg', `postgres://nobody:secret@127.0.0.1:${port}/nothing`]);
  expect(code).toBe(1);
  expect(stderr).toMatch(new RegExp(`cannot reach PostgreSQL at 127\\.0\\.0\\.1:${port}`));
  expect(stderr).not.toMatch(/secret/);
  oneLine(stderr);
});

it('says in one line that the database cannot be opened, exit 1', async () => {
  const { code, stderr } = await runToExit(['--port', '0', '--db', join(dir, 'missing-dir', 'x.sqlite')]);
  expect(code).toBe(1);
  expect(stderr).toMatch(/cannot open the database/);
  oneLine(stderr);
});

it('prints the admin token it requires, and takes the new flags', async () => {
  const run = runCli(['--port', '0', '--db', join(dir, 'flags.sqlite'), '--admin-token', 'a-token-of-16-chars', '--allowed-origin', 'http://localhost:5173', '--max-connections', '50']);
  const url = await run.url;
  const auth = { Authorization: 'Bearer a-token-of-16-chars' };
  expect((await call(url, 'GET', '/admin/stats', undefined, auth)).status).toBe(200);
  expect((await call(url, 'GET', '/admin/stats')).status).toBe(401);
  expect((await call(url, 'PUT', '/api/t/x', {}, { Origin: 'http://localhost:5173' })).status).toBe(200);
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
});

it('prints a generated admin token when none is given', async () => {
  const run = runCli(['--port', '0', '--db', join(dir, 'token.sqlite')]);
  const url = await run.url;
  const token = await run.token;
  expect((await call(url, 'GET', '/admin/stats', undefined, { Authorization: `Bearer ${token}` })).status).toBe(200);
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
});

it('--auth --users: /api needs a session from /auth/login, which lasts --session-ttl', async () => {
  const run = runCli(['--port', '0', '--db', join(dir, 'auth.sqlite'), '--auth', '--users', 'alice:pw1,bob:pw:2', '--session-ttl', '5m']);
  const url = await run.url;
  expect((await call(url, 'GET', '/api/t')).status).toBe(401);
  const login = await call(url, 'POST', '/auth/login', { user: 'bob', password: 'pw:2' });
  expect(login.status).toBe(200);
  const started = Date.now();
  expect(login.body.expiresAt).toBeGreaterThan(started + 4 * 60_000);
  expect(login.body.expiresAt).toBeLessThanOrEqual(started + 5 * 60_000 + 1000);
  expect((await call(url, 'GET', '/api/t', undefined, { Authorization: `Bearer ${login.body.token}` })).status).toBe(200);
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(0);
});

it('--auth --users-file takes name:password lines or a JSON object', async () => {
  const lines = join(dir, 'users.txt');
  writeFileSync(lines, '# demo users\nalice:pw,with,commas\n\nbob:pw2\n');
  const json = join(dir, 'users.json');
  writeFileSync(json, JSON.stringify({ carol: 'pw3' }));
  for (const [file, user, password] of [[lines, 'alice', 'pw,with,commas'], [json, 'carol', 'pw3']] as const) {
    const run = runCli(['--port', '0', '--db', join(dir, `users-${user}.sqlite`), '--auth', '--users-file', file]);
    const url = await run.url;
    expect((await call(url, 'POST', '/auth/login', { user, password })).status, file).toBe(200);
    expect((await call(url, 'POST', '/auth/login', { user, password: 'wrong' })).status, file).toBe(401);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
  }
});
