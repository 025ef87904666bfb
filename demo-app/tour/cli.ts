/**
 * The demo tour: the Rust demo's commands, played on the real PWA in
 * headless Chromium against the reference master.
 *
 *   npm run demo -- tour        every command below, in order
 *   npm run demo -- list        run it twice: a miss, then a hit
 */
import { parseArgs } from 'node:util';
import { opTarget } from '../../src/queue/types.js';
import { API_USAGE, ApiUsageError, runApiMode } from '../api-mode.js';
import { startStage, type Stage, type TableEvent } from './browser.js';

const USAGE = `usage: npm run demo -- [flags] COMMAND
commands:
  seed                       load the sample products into the master
  list                       read page 1 (a miss on the first run, a hit on the next)
  add ID NAME PRICE          insert through the LiveTable, then list
  get ID                     read one row
  delete ID                  delete through the LiveTable, then list
  event-then-list [--id ID]  list, a change made on the master, the invalidation, the refetch
  prefetch [--pages 1-20]    make the table available offline: pin and fetch pages (default the whole table, up to 10,000 rows)
  info                       tables, cache, queue, stream, worker version
  offline-edit               edit offline, reload, reconnect: applied once
  tour                       all of the above, in order
  ${API_USAGE}
flags:
  --debug            print every event of the inspector log
  --master PATH      the master's SQLite file (default ./demo-master.sqlite)
  --cache idb|mem|none   the worker's cache backend (default idb)
  --profile DIR      the browser profile: cache and queue live here (default ./.profile)
  --port N           the master's port; the origin owns the profile's data (default 8787)
  --headed           show the browser and the app (needs a display); the app's own reads warm the cache too`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    debug: { type: 'boolean', default: false },
    master: { type: 'string', default: './demo-master.sqlite' },
    cache: { type: 'string', default: 'idb' },
    profile: { type: 'string', default: './.profile' },
    port: { type: 'string', default: '8787' },
    headed: { type: 'boolean', default: false },
    id: { type: 'string' },
    data: { type: 'string', default: './demo-api.json' },
    pages: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});

const [command, ...args] = positionals;
if (values.help || !command) fail(USAGE, values.help ? 0 : 2);
if (!['idb', 'mem', 'none'].includes(values.cache!)) fail(`--cache must be idb, mem or none, got "${values.cache}"`, 2);
const port = Number(values.port);
if (!Number.isInteger(port) || port <= 0 || port > 65535) fail(`--port must be a port number, got "${values.port}"`, 2);

// A REST API no one here wrote: no browser and no master, json-server and a LiveTable in this process.
if (command === 'api') {
  await runApiMode(args, { data: values.data!, say: (line) => console.log(line) }).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e), e instanceof ApiUsageError ? 2 : 1));
  process.exit(0);
}

type Read = { rows: Array<[string, Record<string, unknown>]>; source: string; stale: boolean; pendingIds: string[]; ms: number };

const commands: Record<string, (s: Stage, args: string[]) => Promise<void>> = {
  async seed(s) {
    const invalidated = s.nextEvent(byChangeFeed);
    await s.api('/admin/seed', { method: 'POST' });
    await invalidated;
    const { total } = await s.api('/api/products?page=1&ipp=1');
    say(`seeded the master: products a, b, c (${total} rows)`);
  },

  async list(s) {
    await list(s, 'list');
  },

  async add(s, [id, name, price]) {
    if (!id || !name || !price || !Number.isFinite(Number(price))) fail('usage: add ID NAME PRICE (PRICE a number)', 2);
    const { ack, applied, row } = await s.page.evaluate(async (r) => {
      const t0 = performance.now();
      const opId = crypto.randomUUID();
      await window.live.insert(r.id, { name: r.name, price: r.price }, { wait: 'queued', opId });
      const ack = performance.now() - t0;
      const row = await window.live.waitFor(opId);
      return { ack, applied: performance.now() - t0, row };
    }, { id, name, price: Number(price) });
    say(`add ${id}: queued durably in ${ms(ack)}, applied by the master in ${ms(applied)}: ${JSON.stringify(row)}`);
    say('  the master confirmed, so the cache key "products" was invalidated');
    await list(s, 'list');
  },

  async get(s, [id]) {
    if (!id) fail('usage: get ID', 2);
    for (const label of ['get', 'get again']) {
      const read = await s.page.evaluate(async (id) => {
        const t0 = performance.now();
        const r = await window.live.readOne(id, { freshness: 'strict' }); // the Rust demo's reads: a stale entry is refetched first
        return { ...r, ms: performance.now() - t0 };
      }, id);
      const row = read.rows[0]?.[1];
      say(`${label} ${id}: ${outcome(read)} ${row ? JSON.stringify(row) : '(no such row)'}`);
      say(`  wall time: ${ms(read.ms)}`);
    }
  },

  async delete(s, [id]) {
    if (!id) fail('usage: delete ID', 2);
    const t = await s.page.evaluate(async (id) => {
      const t0 = performance.now();
      await window.live.delete(id, { wait: 'applied' });
      return performance.now() - t0;
    }, id);
    say(`delete ${id}: applied by the master in ${ms(t)}; cache invalidated`);
    await list(s, 'list');
  },

  async 'event-then-list'(s) {
    await list(s, 'first list');
    await list(s, 'second list');
    const id = values.id ?? 'a';
    const { price } = await s.api(`/api/products/${encodeURIComponent(id)}`);
    const heard = s.nextEvent(byChangeFeed);
    const sent = Date.now();
    await s.api(`/api/products/${encodeURIComponent(id)}`, { method: 'PATCH', body: { price: Number(price) + 1 } });
    const { at } = await heard;
    say(`a change made on the master (${id}.price ${price} → ${Number(price) + 1}) reached this tab as an invalidation in ${at - sent} ms`);
    await list(s, 'list after the event');
  },

  async prefetch(s) {
    const range = values.pages === undefined ? {} : { pages: values.pages };
    if (values.pages !== undefined && !/^\d+(-\d+)?$/.test(values.pages)) fail(`--pages must be a page or a range like 1-20, got "${values.pages}"`, 2);
    const { result, seen, ms: took } = await s.page.evaluate(async (range) => {
      const t0 = performance.now();
      const events: Array<{ done: number }> = [];
      // A bound method, not a function literal: tsx would wrap a literal in a helper the page does not have.
      const result = await window.live.prefetch({ ...range, pin: true }, { onProgress: events.push.bind(events) });
      return { result, seen: events.map((e) => e.done), ms: performance.now() - t0 };
    }, range);
    const inOrder = seen.every((done, i) => done === i + 1);
    say(`prefetch ${values.pages ? `pages ${values.pages}` : 'the whole table'}: ${result.state}, ${result.done}/${result.total} pages, ${result.rows} rows in ${ms(took)} (${Math.round((result.rows / took) * 1000)} rows/s)`);
    say(`  progress: ${seen.length} events, ${inOrder ? 'in page order' : `OUT OF ORDER: ${seen.join(' ')}`}`);
    const status = await s.page.evaluate(() => window.live.offlineStatus());
    for (const pin of status.pins) say(`  pinned ${pin.label}: ${pin.fresh} fresh, ${pin.stale} stale, ${pin.missing} missing (never evicted; refreshed in the background once invalidated)`);
    if (result.state !== 'done') process.exitCode = 1;
  },

  async info(s) {
    const info = await s.page.evaluate(() => window.vantageInfo());
    const stats = await s.api('/admin/stats');
    say(`worker version ${info.version}, bridge protocol ${info.protocol}`);
    for (const t of info.tables) {
      say(`table "${t.name}": cacheKey "${t.cacheKey}", masterIpp ${t.masterIpp}, cache ${t.cache}, queue ${t.queue}`);
      say(`  queue: ${t.pending} pending, ${t.dead} dead; stream ${t.stream}, last event id ${t.lastEventId ?? '(none)'}`);
      if (t.delivery) say(`  delivery: ${t.delivery}`);
      const c = t.offline?.cache;
      if (c) say(`  cache: ${c.bytes} bytes in ${c.entries} entries, budget ${c.budgetBytes} bytes, ${c.evicted} evicted${c.quotaPressure ? ', gave way to quota pressure' : ''}`);
      for (const pin of t.offline?.pins ?? []) say(`  pinned ${pin.label}: ${pin.fresh} fresh, ${pin.stale} stale, ${pin.missing} missing`);
    }
    if (info.storage?.quota !== undefined) {
      say(`storage: ${info.storage.usage ?? 0} of ${info.storage.quota} bytes used, ${info.storage.persisted ? 'persistent' : 'best-effort (the browser may evict it)'}`);
    }
    say(`master ${s.master.url} (${values.master}): ${stats.writes} writes and ${stats.replays} idempotent replays since it started, last event ${stats.events}`);
    say(`browser profile ${values.profile}: cache and queue persist between runs`);
  },

  async 'offline-edit'(s) {
    const id = 'b';
    const before = (await s.api('/admin/stats')).writes;
    const { price } = await s.api(`/api/products/${id}`);
    await list(s, 'list (online)');
    await s.context.setOffline(true);
    const ack = await s.page.evaluate(async ([id, price]) => {
      const t0 = performance.now();
      await window.live.patch(id as string, { price: (price as number) + 1 }, { wait: 'queued' });
      return performance.now() - t0;
    }, [id, Number(price)] as const);
    say(`offline: patched ${id}.price to ${Number(price) + 1}; acknowledged in ${ms(ack)} (durable in IndexedDB)`);
    await list(s, 'list (offline)');
    await s.page.reload();
    await s.page.evaluate(() => window.vantageReady);
    const pending = await s.page.evaluate(() => window.live.pending());
    say(`reloaded offline: ${pending.length} op still queued (${pending.map((op) => `${op.kind} ${opTarget(op) ?? ''}`.trim()).join(', ')})`);
    const applied = s.nextEvent((e) => e.type === 'applied');
    const t0 = Date.now();
    await s.context.setOffline(false);
    await applied;
    const after = (await s.api('/admin/stats')).writes;
    say(`back online: applied in ${Date.now() - t0} ms; the master counted ${after - before} write (applied once)`);
    await list(s, 'list (online)');
  },
};

const byChangeFeed = (e: TableEvent) => e.type === 'invalidated' && e.reason === 'event';

async function list(s: Stage, label: string): Promise<void> {
  const read: Read = await s.page.evaluate(async () => {
    const t0 = performance.now();
    const r = await window.live.read({ page: 1 }, { freshness: 'strict' }); // the Rust demo's reads: a stale entry is refetched first
    return { ...r, ms: performance.now() - t0 };
  });
  say(`${label}: ${outcome(read)} ${read.rows.length} rows`);
  for (const [id, row] of read.rows.slice(0, 8)) {
    say(`  ${id.padEnd(8)} ${String(row.name).padEnd(20)} ${String(row.price).padStart(6)}${read.pendingIds.includes(id) ? '  (pending)' : ''}`);
  }
  if (read.rows.length > 8) say(`  … ${read.rows.length - 8} more`);
  if (read.rows.length === 0) say('  (the master is empty: npm run demo -- seed)');
  say(`  wall time: ${ms(read.ms)}`);
}

function outcome(r: { source: string; stale: boolean }): string {
  return r.source === 'cache' ? (r.stale ? 'stale hit (master unreachable)' : 'hit  (cache)') : 'miss (master)';
}

const ms = (n: number) => `${n.toFixed(2)} ms`;
const say = (line: string) => console.log(line);

function fail(message: string, code: number): never {
  (code ? console.error : console.log)(message);
  process.exit(code);
}

const TOUR: Array<[string, string[]]> = [
  ['seed', []],
  ['list', []],
  ['list', []],
  ['add', ['d', 'Donut', '5']],
  ['get', ['d']],
  ['delete', ['d']],
  ['event-then-list', []],
  ['offline-edit', []],
  ['prefetch', []],
  ['info', []],
];

const steps: Array<[string, string[]]> = command === 'tour' ? TOUR : [[command!, args]];
if (!steps.every(([name]) => name in commands)) fail(`unknown command "${command}"\n${USAGE}`, 2);

/** A step that stalls says which one it was, in one line, instead of hanging the tour. */
const STEP_LIMIT_MS = 60_000;
async function within<T>(label: string, work: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label} did not finish in ${STEP_LIMIT_MS / 1000} s`)), STEP_LIMIT_MS);
  });
  try {
    return await Promise.race([work, stalled]);
  } finally {
    clearTimeout(timer);
  }
}

const stage = await within('starting the master and the browser', startStage({
  master: values.master!,
  profile: values.profile!,
  port,
  cache: values.cache!,
  headed: values.headed!,
  onEvent: values.debug ? (e) => say(`  [event] ${JSON.stringify(e)}`) : undefined,
})).catch((e: unknown) => fail(e instanceof Error ? e.message : String(e), 1));
try {
  for (const [name, stepArgs] of steps) {
    if (steps.length > 1) say(`\n$ npm run demo -- ${[name, ...stepArgs].join(' ')}`);
    await within(`the step "${name}"`, commands[name]!(stage, stepArgs));
  }
} catch (e) {
  process.exitCode = 1;
  console.error(e instanceof Error ? e.message : String(e));
} finally {
  await within('closing the browser and the master', stage.close()).catch(() => undefined);
}
// A stalled step may still hold the event loop; a failed tour exits now.
if (process.exitCode) process.exit(process.exitCode);
