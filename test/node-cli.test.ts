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

  it('refuses an unknown command with usage and a non-zero exit', async () => {
    await expect(cli('frobnicate')).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining('usage:') });
  });
});
