/**
 * The `api` mode of both demo CLIs: a LiveTable over a REST API that no one
 * here wrote. json-server 0.17 is started on a free port over a JSON data
 * file (written with sample products the first time), and a RestTable with
 * the json-server adapter speaks to it.
 *
 *   npm run demo -- api products list
 *   npm run demo -- api products get a
 *   npm run demo -- api products add d Donut 5
 */
import { jsonServerAdapter, LiveTable, MemCache, RestTable, type ReadResult, type Row } from '../src/index.js';
import { ensureDataFile, startJsonServer } from './json-server.js';

export const API_USAGE = `api TABLE list              read page 1 twice: a miss, then a hit
  api TABLE get ID            read one row twice
  api TABLE add ID NAME PRICE insert through the LiveTable, then list
  api TABLE delete ID         delete through the LiveTable, then list
  api TABLE info              the backend, its adapter and what it guarantees
  (against json-server started on a free port over --data FILE, default ./demo-api.json)`;

/** A usage mistake: one line, exit code 2. */
export class ApiUsageError extends Error {}

/** Runs one `api` command, printing with `say`. Throws ApiUsageError for bad arguments; backend failures reject with their typed error. */
export async function runApiMode(args: string[], opts: { data: string; say: (line: string) => void }): Promise<void> {
  const [table, command, ...rest] = args;
  const say = opts.say;
  if (!table || !command) throw new ApiUsageError(`usage: ${API_USAGE}`);
  const need = (n: number, usage: string) => {
    if (rest.length < n) throw new ApiUsageError(`usage: api ${table} ${usage}`);
  };
  if (!['list', 'get', 'add', 'delete', 'info'].includes(command)) throw new ApiUsageError(`unknown api command "${command}"\nusage: ${API_USAGE}`);
  if (command === 'get' || command === 'delete') need(1, `${command} ID`);
  if (command === 'add') {
    need(3, 'add ID NAME PRICE');
    if (!Number.isFinite(Number(rest[2]))) throw new ApiUsageError(`PRICE must be a number, got "${rest[2]}"`);
  }

  if (ensureDataFile(opts.data)) say(`wrote sample products to ${opts.data}`);
  const server = await startJsonServer(opts.data);
  const master = new RestTable(server.url, table, { adapter: jsonServerAdapter });
  const live = new LiveTable(master, table, new MemCache());
  try {
    switch (command) {
      case 'list':
        await list(live, 'first read', say);
        await list(live, 'second read', say);
        break;
      case 'get':
        for (const label of ['first read', 'second read']) {
          const [read, ms] = await timed(() => live.readOne(rest[0]!));
          const row = read.rows[0]?.[1];
          say(`${label}: ${outcome(read)} ${row ? JSON.stringify(row) : `(no row "${rest[0]}")`}`);
          say(`  wall time: ${ms.toFixed(2)} ms`);
        }
        break;
      case 'add': {
        const [id, name, price] = rest as [string, string, string];
        const [row, ms] = await timed(() => live.insert(id, { name, price: Number(price) }));
        say(`add ${id}: applied by json-server in ${ms.toFixed(2)} ms: ${JSON.stringify(row)}`);
        await list(live, 'list', say);
        break;
      }
      case 'delete':
        await live.delete(rest[0]!);
        say(`delete ${rest[0]}: applied by json-server`);
        await list(live, 'list', say);
        break;
      case 'info':
        say(`backend: json-server 0.17 at ${server.url}, data file ${opts.data}`);
        say(`table "${table}": RestTable with the "${master.adapter.name}" adapter, cache MemCache, queue ${live.queue.constructor.name}`);
        say(`delivery: ${master.delivery.summary}`);
        say(`idempotency keys replayed: ${master.delivery.idempotencyKeys ? 'yes' : 'no'}; If-Match checked: ${master.delivery.ifMatch ? 'yes' : 'no'}`);
        break;
    }
  } finally {
    live.close();
    await server.stop();
  }
}

async function list(live: LiveTable, label: string, say: (line: string) => void): Promise<void> {
  const [read, ms] = await timed(() => live.read({ page: 1 }));
  say(`${label}: ${outcome(read)} ${read.rows.length} rows`);
  for (const [id, row] of read.rows.slice(0, 8)) say(`  ${id.padEnd(8)} ${String((row as Row).name).padEnd(20)} ${String((row as Row).price).padStart(6)}`);
  if (read.rows.length > 8) say(`  … ${read.rows.length - 8} more`);
  say(`  wall time: ${ms.toFixed(2)} ms`);
}

const outcome = (r: ReadResult) => (r.source === 'cache' ? 'hit  (cache)' : 'miss (json-server)');

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}
