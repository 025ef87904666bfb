/**
 * The Rust crate's demo, in Node: a JSON file plays the remote database and a
 * LiveTable wraps it. Try the library before any browser part:
 *
 *   npm run demo:node -- seed
 *   npm run demo:node -- list
 *   npm run demo:node -- --debug add d Donut 5
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ManualLiveStream } from '../src/stream/manual.js';
import { API_USAGE, ApiUsageError, runApiMode } from './api-mode.js';
import { configureLogging, LiveTable, MemCache, MemoryTable, NoCache, type Id, type LogRecord, type Row } from '../src/index.js';

const SAMPLE: Array<[Id, Row]> = [
  ['a', { id: 'a', name: 'Apple Pie', price: 12 }],
  ['b', { id: 'b', name: 'Brioche', price: 8 }],
  ['c', { id: 'c', name: 'Cinnamon Roll', price: 15 }],
];

const USAGE = `usage: npm run demo:node -- [--master PATH] [--cache mem|none] [--debug] COMMAND
commands:
  seed                      write the sample products to the master file
  list                      read every row twice: a miss, then a hit
  get ID                    read one row twice
  add ID NAME PRICE         insert through the LiveTable
  delete ID                 delete through the LiveTable
  event-then-list [--id ID] list, list, a change event, list again
  info                      show the LiveTable's wiring
  ${API_USAGE}`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    master: { type: 'string', default: './demo-master.json' },
    cache: { type: 'string', default: 'mem' },
    debug: { type: 'boolean', default: false },
    id: { type: 'string' },
    data: { type: 'string', default: './demo-api.json' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const [command, ...args] = positionals;
if (values.help || !command) exit(USAGE, values.help ? 0 : 2);
if (values.cache !== 'mem' && values.cache !== 'none') exit(`--cache must be mem or none, got "${values.cache}"`, 2);
if (values.debug) configureLogging({ filter: process.env.VANTAGE_LIVE_LOG ?? 'vantage-live:*=debug', sink: printRecord });

const masterPath = values.master!;
const master = new MemoryTable('products', loadRows());
const cache = values.cache === 'mem' ? new MemCache() : new NoCache();
const stream = new ManualLiveStream();
const live = new LiveTable(master, 'products', cache, { stream });

switch (command) {
  case 'seed': {
    save(SAMPLE);
    console.log(`seeded ${SAMPLE.length} products into ${masterPath}`);
    break;
  }
  case 'list':
    await timedList('first read');
    await timedList('second read');
    break;
  case 'get': {
    const id = need(args[0], 'get ID');
    for (const label of ['first read', 'second read']) {
      const [result, ms] = await timed(() => live.readOne(id));
      const row = result.rows[0]?.[1];
      console.log(`${label}: ${result.source === 'cache' ? 'hit ' : 'miss'} ${row ? JSON.stringify(row) : `(no row "${id}")`}`);
      console.log(`  wall time: ${ms.toFixed(3)} ms`);
    }
    break;
  }
  case 'add': {
    const [id, name, price] = [need(args[0], 'add ID NAME PRICE'), need(args[1], 'add ID NAME PRICE'), Number(need(args[2], 'add ID NAME PRICE'))];
    if (!Number.isFinite(price)) exit(`PRICE must be a number, got "${args[2]}"`, 2);
    await timedList('before');
    const [row, ms] = await timed(() => live.insert(id, { name, price }));
    save(await master.list());
    console.log(`inserted ${JSON.stringify(row)} (applied by the master, cache invalidated) in ${ms.toFixed(3)} ms`);
    await timedList('after');
    break;
  }
  case 'delete': {
    const id = need(args[0], 'delete ID');
    await timedList('before');
    await live.delete(id);
    save(await master.list());
    console.log(`deleted "${id}" (cache invalidated)`);
    await timedList('after');
    break;
  }
  case 'event-then-list': {
    await timedList('first read');
    await timedList('second read');
    const event = values.id ? { kind: 'updated' as const, id: values.id } : { kind: 'changed' as const };
    const invalidated = new Promise((resolve) => live.subscribe((e) => e.type === 'invalidated' && resolve(e)));
    stream.push(event);
    await invalidated;
    console.log(`live event ${JSON.stringify(event)} arrived: cache key "products" invalidated`);
    await timedList('after the event');
    break;
  }
  case 'api':
    await runApiMode(args, { data: values.data!, say: (line) => console.log(line) }).catch((e: unknown) =>
      exit(e instanceof Error ? e.message : String(e), e instanceof ApiUsageError ? 2 : 1),
    );
    break;
  case 'info':
    console.log(`LiveTable "${live.cacheKey}"
  master:    MemoryTable "${master.name}" loaded from ${masterPath} (${master.size} rows, id field "${live.idField}")
  cache:     ${cache.constructor.name}
  queue:     ${live.queue.constructor.name}
  stream:    ManualLiveStream
  masterIpp: ${live.masterIpp}
  keys:      ${live.pageCacheKey(1)}, ${live.idCacheKey('a')}`);
    break;
  default:
    exit(`unknown command "${command}"\n${USAGE}`, 2);
}
live.close();

async function timedList(label: string): Promise<void> {
  const [result, ms] = await timed(() => live.read());
  const outcome = result.source === 'cache' ? 'hit ' : 'miss';
  console.log(`${label}: ${outcome} ${result.rows.length} rows from ${result.source}`);
  for (const [id, row] of result.rows) console.log(`  ${id.padEnd(6)} ${String(row.name).padEnd(16)} ${row.price}`);
  console.log(`  wall time: ${ms.toFixed(3)} ms`);
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}

function loadRows(): Array<[Id, Row]> {
  if (!existsSync(masterPath)) return [];
  const rows = JSON.parse(readFileSync(masterPath, 'utf8')) as Row[];
  return rows.map((row) => [String(row.id), row]);
}

function save(rows: Array<[Id, Row]>): void {
  writeFileSync(masterPath, `${JSON.stringify(rows.map(([, row]) => row), null, 2)}\n`);
}

function need(value: string | undefined, usage: string): string {
  return value ?? exit(`missing argument: ${usage}`, 2);
}

function printRecord(r: LogRecord): void {
  const fields = Object.entries(r.fields).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`);
  console.log(`  [${r.level}] ${r.namespace} ${r.message} ${fields.join(' ')}`);
}

function exit(message: string, code: number): never {
  (code ? console.error : console.log)(message);
  process.exit(code);
}
