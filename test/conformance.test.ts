import { execFile } from 'node:child_process';
import { createServer, request } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestMaster, type TestMaster } from '../demo-app/server/testkit.js';
import { CHECKS, ConformanceSetupError, formatResult, runConformance, type CheckResult } from '../src/conformance/run.js';

let master: TestMaster;
let forgetful: Server;
let forgetfulUrl: string;

const listen = (server: Server): Promise<string> =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)));

const close = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });

/**
 * A backend that ignores a request header (Idempotency-Key, If-Match): a proxy
 * in front of the reference master that drops it, and is otherwise the master itself.
 */
function keyForgettingProxy(target: URL, header = 'idempotency-key', answerHeader?: string): Server {
  return createServer((req, res) => {
    const { [header]: _dropped, ...rest } = req.headers;
    const headers = { ...rest, host: target.host };
    // `path` keeps the raw target: a URL string would be normalised (%2e).
    const upstream = request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers, agent: false }, (answer) => {
      const { [answerHeader ?? '']: _hidden, ...kept } = answer.headers;
      res.writeHead(answer.statusCode ?? 502, kept);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  });
}

/** A port nothing listens on: bound by the OS, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  const url = await listen(server);
  await close(server);
  return Number(new URL(url).port);
}

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', 'src/conformance/cli.ts', ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

const failed = (results: CheckResult[]): string[] => results.filter((r) => r.outcome === 'fail').map((r) => r.id);

beforeAll(async () => {
  master = await startTestMaster();
  forgetful = keyForgettingProxy(new URL(master.url));
  forgetfulUrl = await listen(forgetful);
});

afterAll(async () => {
  await close(forgetful);
  await master.dispose();
});

describe('the conformance kit', () => {
  it('passes every check against the reference master and leaves no rows behind', async () => {
    const lines: string[] = [];
    const results = await runConformance({ baseUrl: master.url, table: 'conformance', onResult: (r) => lines.push(formatResult(r)) });
    expect(lines.filter((l) => !l.startsWith('PASS')), lines.join('\n')).toEqual([]);
    expect(results.map((r) => r.id)).toEqual(CHECKS.map((c) => c.id));
    const left = await fetch(`${master.url}/api/conformance`).then((r) => r.json());
    expect(left.total).toBe(0);
  });

  it('reports the idempotency checks as FAIL, with what it expected and got, against a backend that ignores Idempotency-Key', async () => {
    const results = await runConformance({ baseUrl: forgetfulUrl, table: 'forgetful' });
    expect(failed(results)).toEqual(['idempotency.replay', 'idempotency.reuse', 'idempotency.if-match-replay', 'idempotency.key-format']);
    const lines = results.map(formatResult);
    expect(lines).toContainEqual(expect.stringMatching(/^FAIL  idempotency\.replay  POST \/api\/forgetful \{"name":"once"\} with an Idempotency-Key, sent again: expected 201 \{"id":"[^"]+",\.\.\.\} \(the first answer: applied once\), got 201 \{"id":"/));
    expect(lines).toContainEqual(expect.stringMatching(/^FAIL  idempotency\.reuse  PUT \/api\/forgetful\/vlc-\S+ with the same Idempotency-Key: expected 422 \{"error":\{"code":"idempotency_key_reused".*got 200 /));
    expect(lines.every((l) => !l.includes('\n'))).toBe(true);
  });

  it('reports the If-Match check as FAIL against a backend that ignores If-Match', async () => {
    const proxy = keyForgettingProxy(new URL(master.url), 'if-match');
    try {
      const results = await runConformance({ baseUrl: await listen(proxy), table: 'unmatched', skip: ['feed', 'ids', 'rows', 'list', 'errors'] });
      expect(failed(results)).toEqual(['versions.if-match']);
      expect(results.map(formatResult)).toContainEqual(expect.stringMatching(/^FAIL  versions\.if-match  PATCH \/api\/unmatched\/\S+ with the stale If-Match: "\d+": expected 412 /));
    } finally {
      await close(proxy);
    }
  });

  it('passes the batch checks against a master without batches, which need only its refusal, and fails them against one that applies a batch it does not advertise', async () => {
    const plain = await startTestMaster({ batches: false });
    try {
      const results = await runConformance({ baseUrl: plain.url, table: 'unbatched', skip: ['list', 'rows', 'ids', 'idempotency', 'versions', 'errors', 'feed'] });
      expect(results.filter((r) => r.outcome !== 'skip').map((r) => `${r.outcome} ${r.id}`)).toEqual(['pass batch.advertised', 'pass batch.results', 'pass batch.replay', 'pass batch.if-match']);
    } finally {
      await plain.dispose();
    }
    // A proxy that hides the advertisement of a master that takes batches.
    const hiding = keyForgettingProxy(new URL(master.url), 'x-none', 'vantage-batch');
    try {
      const results = await runConformance({ baseUrl: await listen(hiding), table: 'hidden', skip: ['list', 'rows', 'ids', 'idempotency', 'versions', 'errors', 'feed'] });
      expect(failed(results)).toEqual(['batch.advertised']);
    } finally {
      await close(hiding);
    }
  });

  it('skips groups and checks by name', async () => {
    const results = await runConformance({ baseUrl: forgetfulUrl, table: 'forgetful', skip: ['idempotency', 'feed', 'ids.accepted'] });
    const skipped = results.filter((r) => r.outcome === 'skip').map((r) => r.id);
    expect(skipped).toEqual(CHECKS.filter((c) => c.group === 'idempotency' || c.group === 'feed' || c.id === 'ids.accepted').map((c) => c.id));
    expect(failed(results)).toEqual([]);
  });

  it('sends --header values with every request', async () => {
    const seen: (string | undefined)[] = [];
    const target = new URL(master.url);
    const gate = createServer((req, res) => {
      seen.push(req.headers.authorization);
      if (req.headers.authorization !== 'Bearer letmein') {
        res.writeHead(401, { 'Content-Type': 'application/json' });
        res.end('{"error":{"code":"auth","message":"sign in"}}');
        return;
      }
      const upstream = request({ hostname: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host }, agent: false }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      res.on('close', () => upstream.destroy());
      req.pipe(upstream);
    });
    const url = await listen(gate);
    try {
      await expect(runConformance({ baseUrl: url, table: 'gated', skip: ['feed', 'ids', 'idempotency', 'errors', 'rows'] })).rejects.toThrow(/refused GET \/api\/gated\?page=1&ipp=1 with 401/);
      const results = await runConformance({ baseUrl: url, table: 'gated', headers: { Authorization: 'Bearer letmein' }, skip: ['feed', 'ids', 'idempotency', 'errors'] });
      expect(failed(results)).toEqual([]);
      expect(seen.filter((h) => h === 'Bearer letmein').length).toBeGreaterThan(10);
    } finally {
      await close(gate);
    }
  });

  it('refuses bad options with a ConformanceSetupError before sending anything', async () => {
    await expect(runConformance({ baseUrl: 'not a url', table: 't' })).rejects.toBeInstanceOf(ConformanceSetupError);
    await expect(runConformance({ baseUrl: master.url, table: 'no/slash' })).rejects.toThrow(/table name/);
    await expect(runConformance({ baseUrl: master.url, table: 't', skip: ['nonsense'] })).rejects.toThrow(/nothing to skip named nonsense/);
  });
});

describe('the vantage-live-conformance command', () => {
  it('exits 2 with one line and no stack trace for an unreachable server or bad arguments, and 1 with FAIL lines when a check fails', async () => {
    const port = await closedPort();
    const unreachable = await runCli([`http://127.0.0.1:${port}`, 'products']);
    expect(unreachable.code).toBe(2);
    expect(unreachable.stdout).toBe('');
    expect(unreachable.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^vantage-live-conformance: cannot reach http://127\\.0\\.0\\.1:${port}/: .*ECONNREFUSED`))]);

    const badArgs = await runCli(['localhost:8787']);
    expect(badArgs.code).toBe(2);
    expect(badArgs.stderr.trim().split('\n')).toEqual(['vantage-live-conformance: give the base URL and a table name (see --help)']);

    const failing = await runCli([forgetfulUrl, 'forgetful-cli', '--skip', 'feed,ids,errors,list']);
    expect(failing.code).toBe(1);
    expect(failing.stdout).toMatch(/^FAIL  idempotency\.replay  /m);
    expect(failing.stdout).toMatch(/^PASS  rows\.get  /m);
    expect(failing.stdout.trim().split('\n').at(-1)).toMatch(/^\d+ passed, 4 failed, \d+ skipped$/);
  });
});
