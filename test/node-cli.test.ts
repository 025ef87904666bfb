import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const master = join(mkdtempSync(join(tmpdir(), 'vl-cli-')), 'master.json');
const cli = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'demo-app/node-cli.ts', '--master', master, ...args]).then((r) => r.stdout);

describe('the Node demo CLI', () => {
  it('seeds, lists a miss then a hit with wall times, adds, gets, deletes, and invalidates on an event', async () => {
    expect(await cli('seed')).toContain('seeded 3 products');

    const list = await cli('list');
    expect(list).toMatch(/first read: miss 3 rows from master[\s\S]*Apple Pie[\s\S]*wall time: [\d.]+ ms[\s\S]*second read: hit  3 rows from cache[\s\S]*wall time: [\d.]+ ms/);

    const add = await cli('--debug', 'add', 'd', 'Donut', '5');
    expect(add).toMatch(/vantage-live:table enqueued op=insert/);
    expect(add).toMatch(/vantage-live:table invalidated cacheKey=products outcome=invalidated/);
    expect(add).toMatch(/after: miss 4 rows from master[\s\S]*Donut/);

    expect(await cli('get', 'd')).toMatch(/first read: miss \{"name":"Donut","price":5,"id":"d"\}[\s\S]*second read: hit/);

    const event = await cli('event-then-list', '--id', 'a');
    expect(event).toMatch(/second read: hit[\s\S]*live event \{"kind":"updated","id":"a"\} arrived[\s\S]*after the event: miss 4 rows from master/);

    expect(await cli('delete', 'd')).toMatch(/after: miss 3 rows from master/);
    expect(await cli('--cache', 'none', 'list')).toMatch(/second read: miss/);
    expect(await cli('info')).toMatch(/cache:\s+MemCache[\s\S]*queue:\s+MemQueue/);
  });

  it('api: lists, gets, adds and deletes through a LiveTable over json-server started on a free port, and says what it guarantees', async () => {
    const data = join(mkdtempSync(join(tmpdir(), 'vl-api-')), 'api.json');
    const api = (...args: string[]) => cli('--data', data, 'api', 'products', ...args);
    const list = await api('list');
    expect(list).toContain(`wrote sample products to ${data}`);
    expect(list).toMatch(/first read: miss \(json-server\) 3 rows\n\s+a\s+Apple Pie\s+12[\s\S]*second read: hit  \(cache\) 3 rows/);
    expect(await api('add', 'd', 'Donut', '5')).toMatch(/add d: applied by json-server in [\d.]+ ms: \{"name":"Donut","price":5,"id":"d"\}\nlist: miss \(json-server\) 4 rows/);
    expect(await api('get', 'd')).toMatch(/first read: miss \(json-server\) \{"name":"Donut","price":5,"id":"d"\}[\s\S]*second read: hit/);
    expect(await api('delete', 'd')).toMatch(/delete d: applied by json-server\nlist: miss \(json-server\) 3 rows/);
    expect(await api('info')).toMatch(/"json-server" adapter[\s\S]*delivery: at least once[\s\S]*idempotency keys replayed: no/);
    await expect(cli('--data', data, 'api', 'orders', 'list')).rejects.toMatchObject({ code: 1, stderr: expect.stringMatching(/404 no such row or table/) });
    await expect(api('add', 'x', 'Name', 'cheap')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('PRICE must be a number') });
  }, 120_000); // seven CLI runs, each starting tsx and json-server: slow on a loaded machine

  it('refuses an unknown command with usage and a non-zero exit', async () => {
    await expect(cli('frobnicate')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
  });
});
