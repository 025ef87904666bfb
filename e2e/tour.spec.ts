import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';

const run = promisify(execFile);

test('the tour CLI plays every command of the Rust demo, with timings, and keeps cache and queue between runs', async ({}, testInfo) => {
  test.setTimeout(180_000);
  const dir = testInfo.outputPath('tour');
  const port = String(20_000 + Math.floor(Math.random() * 20_000));
  // A failed run shows what the tour printed up to the step that failed or stalled (the CLI gives each step 60 s).
  const demo = async (...args: string[]) => {
    const argv = ['--import', 'tsx', 'demo-app/tour/cli.ts', '--profile', `${dir}/profile`, '--master', `${dir}/master.sqlite`, '--port', port, ...args];
    try {
      return (await run(process.execPath, argv, { timeout: 150_000 })).stdout;
    } catch (e) {
      const { stdout, stderr } = e as { stdout?: string; stderr?: string };
      throw new Error(`npm run demo -- ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
    }
  };

  const tour = await demo('tour');
  const steps = tour.split('\n$ npm run demo -- ').slice(1);
  expect(steps.map((s) => s.split('\n')[0])).toEqual(['seed', 'list', 'list', 'add d Donut 5', 'get d', 'delete d', 'event-then-list', 'offline-edit', 'prefetch', 'info']);
  const [seed, list1, list2, add, get, del, event, offline, prefetch, info] = steps as [string, string, string, string, string, string, string, string, string, string];
  expect(seed).toContain('seeded the master: products a, b, c (3 rows)');
  expect(list1).toMatch(/list: miss \(master\) 3 rows\n\s+a\s+Apple Pie\s+12\n[\s\S]*wall time: [\d.]+ ms/);
  expect(list2).toMatch(/list: hit  \(cache\) 3 rows[\s\S]*wall time: [\d.]+ ms/);
  expect(add).toMatch(/add d: queued durably in [\d.]+ ms, applied by the master in [\d.]+ ms: \{"id":"d","name":"Donut","price":5,"_version":\d+\}/);
  expect(add).toMatch(/list: miss \(master\) 4 rows[\s\S]*Donut/);
  expect(get).toMatch(/get d: miss \(master\)[\s\S]*get again d: hit  \(cache\)/);
  expect(del).toMatch(/delete d: applied by the master[\s\S]*list: miss \(master\) 3 rows/);
  expect(event).toMatch(/second list: hit[\s\S]*a change made on the master \(a\.price 12 → 13\) reached this tab as an invalidation in \d+ ms\nlist after the event: miss \(master\) 3 rows\n\s+a\s+Apple Pie\s+13/);
  expect(offline).toMatch(/offline: patched b\.price to 9; acknowledged in [\d.]+ ms[\s\S]*list \(offline\): hit[\s\S]*Brioche\s+9  \(pending\)[\s\S]*reloaded offline: 1 op still queued \(patch b\)\nback online: applied in \d+ ms; the master counted 1 write \(applied once\)/);
  expect(prefetch).toMatch(/prefetch the whole table: done, 1\/1 pages, 3 rows in [\d.]+ ms \(\d+ rows\/s\)\n\s+progress: 1 events, in page order\n\s+pinned the whole table, up to 10000 rows: 1 fresh, 0 stale, 0 missing/);
  expect(info).toMatch(/table "products": cacheKey "products", masterIpp 50, cache IdbCache, queue IdbQueue\n\s+queue: 0 pending, 0 dead/);
  expect(info).toMatch(/\n\s+delivery: exactly once: the master replays a retried Idempotency-Key/); // the worker's info, from its RestTable's adapter
  expect(info).toMatch(/cache: \d+ bytes in \d+ entries, budget 52428800 bytes, 0 evicted\n\s+pinned the whole table, up to 10000 rows: 1 fresh/);
  expect(info).toMatch(/storage: \d+ of \d+ bytes used, (persistent|best-effort)/);

  // A new run on the same profile: the cache survived, so list is a hit.
  await demo('list');
  expect(await demo('list')).toMatch(/list: hit  \(cache\) 3 rows/);
  expect(await demo('--debug', 'get', 'a')).toMatch(/\[event\] \{"type":"read","cacheKey":"products\/id\/a"/);
  // Another cache backend is another worker script, which takes over at once.
  expect(await demo('--cache', 'none', 'info')).toMatch(/cache NoCache, queue IdbQueue/);
  expect(await demo('--cache', 'none', 'list')).toMatch(/list: miss \(master\) 3 rows/);
  // A page range: progress in page order, pages past the end of the table kept as empty pages.
  expect(await demo('prefetch', '--pages', '1-20')).toMatch(/prefetch pages 1-20: done, 20\/20 pages, 3 rows in [\d.]+ ms[\s\S]*progress: 20 events, in page order\n\s+pinned pages 1-20: 20 fresh, 0 stale, 0 missing/);
});

test('the tour CLI api mode: a LiveTable over json-server (a REST API no one here wrote) started on a free port', async ({}, testInfo) => {
  const data = testInfo.outputPath('api.json');
  const api = async (...args: string[]) => (await run(process.execPath, ['--import', 'tsx', 'demo-app/tour/cli.ts', '--data', data, 'api', 'products', ...args])).stdout;
  expect(await api('list')).toMatch(/wrote sample products[\s\S]*first read: miss \(json-server\) 3 rows[\s\S]*second read: hit  \(cache\) 3 rows/);
  expect(await api('add', 'd', 'Donut', '5')).toMatch(/add d: applied by json-server in [\d.]+ ms[\s\S]*list: miss \(json-server\) 4 rows[\s\S]*Donut/);
  expect(await api('get', 'd')).toMatch(/first read: miss \(json-server\) \{"name":"Donut","price":5,"id":"d"\}[\s\S]*second read: hit  \(cache\)/);
  expect(await api('info')).toMatch(/delivery: at least once: inserts with a client id are applied once/);
  await expect(run(process.execPath, ['--import', 'tsx', 'demo-app/tour/cli.ts', '--data', data, 'api', 'products', 'frobnicate'])).rejects.toMatchObject({ code: 2 });
});

test('the tour CLI refuses an unknown command with usage', async () => {
  await expect(run(process.execPath, ['--import', 'tsx', 'demo-app/tour/cli.ts', 'frobnicate'])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
});
