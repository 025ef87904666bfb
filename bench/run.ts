/**
 * vantage-live benchmark suite: `npm run bench` (full, writes
 * bench/results/latest.json and BENCHMARKS.md) or `npm run bench -- --quick`
 * (small counts, writes bench/results/quick.json only; for CI).
 *
 * Starts the reference master (temp SQLite, generated rows, chaos on) serving
 * a temp copy of demo-app/dist plus the bench pages, opens it in headless Debian
 * Chromium, and measures the figures listed in BENCHMARKS.md, each in fresh
 * browser contexts. Exits 1 when a correctness check (zero lost, zero
 * duplicated writes) fails or a figure could not be measured. There are no
 * timing assertions.
 *
 * Options: --quick, --only=reads,writes,flush,invalidation,coldStart,growth,longTasks,fanout,prefetch,peer,
 *          --out=FILE (JSON), --no-md (do not write BENCHMARKS.md), --md (write it in quick mode too),
 *          --page=bench|demo (measure from /bench/live.html, the default, or from the demo UI's page),
 *          --storage=disk|memory (persistent profiles on disk, the default, or incognito contexts with storage in memory),
 *          --seed-rows=N, --flush-sizes=N,M (override the mode's counts),
 *          --report (measure nothing: render BENCHMARKS.md again from bench/results/latest.json, or --out, after editing a figure's section),
 *          --previous=FILE (the run the summary compares with; default: the results file this run replaces, or the one --report renders recorded)
 *
 * BENCHMARKS.md also shows, under each figure, the runs of that figure kept on
 * their own in bench/results/*.json (besides latest.json and quick.json).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { coldStartFigure } from './figures/cold-start.js';
import { fanoutFigure } from './figures/fanout.js';
import { flushFigure } from './figures/flush.js';
import { growthFigure } from './figures/growth.js';
import { invalidationFigure } from './figures/invalidation.js';
import { longTasksFigure } from './figures/long-tasks.js';
import { peerFigure } from './figures/peer.js';
import { prefetchFigure } from './figures/prefetch.js';
import { readsFigure } from './figures/reads.js';
import { writesFigure } from './figures/writes.js';
import { FULL, QUICK } from './lib/config.js';
import { Harness } from './lib/harness.js';
import { machine } from './lib/machine.js';
import type { Check } from './lib/checks.js';
import { previousOf, renderMarkdown, type Results, type SeparateRun } from './lib/report.js';
import { entrySizes } from './lib/sizes.js';
import { prepareSite } from './lib/site.js';

const ROOT = resolve(import.meta.dirname, '..');
const FIGURES = ['reads', 'writes', 'flush', 'invalidation', 'coldStart', 'growth', 'longTasks', 'fanout', 'prefetch', 'peer'] as const;
type FigureName = (typeof FIGURES)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string' },
    md: { type: 'boolean', default: false },
    'no-md': { type: 'boolean', default: false },
    page: { type: 'string', default: 'bench' },
    storage: { type: 'string', default: 'disk' },
    'seed-rows': { type: 'string' },
    'flush-sizes': { type: 'string' },
    report: { type: 'boolean', default: false },
    previous: { type: 'string' },
  },
});
const quick = values.quick === true;
const counts = { ...(quick ? QUICK : FULL) };
if (values['seed-rows']) counts.seedRows = Number(values['seed-rows']);
if (values['flush-sizes']) counts.flushSizes = values['flush-sizes'].split(',').map(Number);
const only = values.only ? (values.only.split(',').map((s) => s.trim()) as FigureName[]) : [...FIGURES];
for (const name of only) if (!FIGURES.includes(name)) throw new Error(`unknown figure "${name}"; known: ${FIGURES.join(', ')}`);
const outFile = resolve(values.out ?? join(ROOT, 'bench/results', quick ? 'quick.json' : 'latest.json'));
const overridden = values['seed-rows'] !== undefined || values['flush-sizes'] !== undefined;
const writeMd = !values['no-md'] && (!quick || values.md === true) && only.length === FIGURES.length && !overridden;
const args = process.argv.slice(2).join(' ');
// `npm run bench` is `vite build && tsx bench/run.ts`; run directly, the demo build is whatever demo-app/dist holds.
const command = process.env.npm_lifecycle_event === 'bench' ? `npm run bench${args ? ` -- ${args}` : ''}` : `npx tsx bench/run.ts${args ? ` ${args}` : ''}`;

const RESULTS_DIR = join(ROOT, 'bench/results');
const readResults = (file: string): Results => JSON.parse(readFileSync(file, 'utf8')) as Results;
/** The runs of single figures kept in bench/results/ (not `main`, latest.json or quick.json). */
const separateRuns = (main: string): SeparateRun[] =>
  readdirSync(RESULTS_DIR)
    .filter((f) => f.endsWith('.json') && f !== 'latest.json' && f !== 'quick.json' && join(RESULTS_DIR, f) !== main)
    .sort()
    .map((f) => ({ file: `bench/results/${f}`, results: readResults(join(RESULTS_DIR, f)) }));

if (values.report) {
  const from = resolve(values.out ?? join(RESULTS_DIR, 'latest.json'));
  const results = readResults(from);
  if (values.previous) results.previous = previousOf(readResults(resolve(values.previous)));
  writeFileSync(join(ROOT, 'BENCHMARKS.md'), renderMarkdown(results, separateRuns(from)));
  console.log(`wrote BENCHMARKS.md from ${relative(process.cwd(), from)}`);
  process.exit(0);
}

// Figures that start their own processes and need neither the browser nor the bench's master.
const BROWSERLESS: readonly FigureName[] = ['fanout'];
const needsBrowser = only.some((name) => !BROWSERLESS.includes(name));

const started = Date.now();
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s`;
const progress = (line: string) => console.log(`[${elapsed()}] ${line}`);

progress(`vantage-live bench, ${quick ? 'quick' : 'full'} mode: ${only.join(', ')}`);
if (values.page !== 'bench' && values.page !== 'demo') throw new Error('--page is "bench" (/bench/live.html, no UI) or "demo" (the demo UI at /)');
if (values.storage !== 'disk' && values.storage !== 'memory') throw new Error('--storage is "disk" (persistent profiles, the default) or "memory" (incognito contexts)');
const site = needsBrowser ? await prepareSite() : undefined;
if (site !== undefined) progress(`site: demo-app/dist + bench pages in ${site}`);
const h =
  site === undefined
    ? undefined
    : await Harness.start({ site, seedRows: counts.seedRows, livePath: values.page === 'demo' ? '/' : '/bench/live.html', storage: values.storage });
/** The harness, for the figures that need it (it is started whenever one of them is selected). */
const browser = (): Harness => {
  if (h === undefined) throw new Error('this figure needs the browser harness');
  return h;
};
let exitCode = 0;
const stop = async () => {
  await h?.close().catch(() => {});
  if (site !== undefined) rmSync(site, { recursive: true, force: true });
};
process.once('SIGINT', () => void stop().then(() => process.exit(130)));

try {
  let demoBuild = 'none (no browser figure)';
  if (h !== undefined) {
    progress(`master ${h.url} with ${counts.seedRows} rows; Chromium ${h.browserVersion} headless, storage on ${h.storage}; measuring from ${h.livePath}`);
    const infoCtx = await h.newContext();
    demoBuild = await (await h.openDemo(infoCtx)).evaluate(async () => (await window.vantageInfo()).version);
    await infoCtx.close();
  }

  const results: Results = {
    mode: quick ? 'quick' : 'full',
    livePath: h?.livePath ?? 'none (no browser figure)',
    storage: h?.storage ?? values.storage,
    command,
    startedAt: new Date(started).toISOString(),
    durationS: 0,
    machine: machine(h === undefined ? 'none (no browser figure)' : `Chromium ${h.browserVersion} (headless, ${process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'})`, demoBuild),
    counts,
    figures: {},
    errors: {},
    load: {},
    checks: [],
  };

  const run = async <K extends FigureName>(name: K, fn: () => Promise<NonNullable<Results['figures'][K]>>) => {
    if (!only.includes(name)) return;
    const loadBefore = loadavg()[0]!;
    progress(`figure ${FIGURES.indexOf(name) + 1}: ${name} (load average ${loadBefore.toFixed(2)})`);
    try {
      results.figures[name] = await fn();
      results.load[name] = [Number(loadBefore.toFixed(2)), Number(loadavg()[0]!.toFixed(2))];
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      results.errors[name] = message;
      results.checks.push({ name: `figure ${name} measured`, ok: false, detail: message });
      progress(`  FAILED: ${message}`);
    } finally {
      await h?.closeContexts();
      await h?.resetChaos();
    }
  };

  results.sizes = await entrySizes();
  const kb = (n: number) => (n / 1000).toFixed(1);
  progress(`entry sizes, minified + gzip: page ${kb(results.sizes.page.gzipBytes)} kB, worker ${kb(results.sizes.worker.gzipBytes)} kB (before this round: 7.1 and 11.5 kB)`);

  const checks: Check[] = results.checks;
  await run('reads', () => readsFigure(browser(), counts, progress));
  await run('writes', () => writesFigure(browser(), counts, progress));
  await run('flush', () => flushFigure(browser(), counts, progress, checks));
  await run('invalidation', () => invalidationFigure(browser(), counts, progress));
  await run('coldStart', () => coldStartFigure(browser(), counts, progress));
  await run('growth', () => growthFigure(browser(), counts, progress));
  await run('longTasks', () => longTasksFigure(browser(), counts, progress));
  await run('fanout', () => fanoutFigure(quick, progress, checks));
  await run('prefetch', () => prefetchFigure(browser(), counts, progress, checks));
  await run('peer', () => peerFigure(browser(), counts, progress, checks));

  results.durationS = Math.round((Date.now() - started) / 1000);
  const previousFile = values.previous ? resolve(values.previous) : existsSync(outFile) ? outFile : undefined;
  if (previousFile !== undefined) results.previous = previousOf(readResults(previousFile));
  mkdirSync(dirname(outFile), { recursive: true });
  writeFileSync(outFile, JSON.stringify(results, null, 2) + '\n');
  progress(`wrote ${relative(process.cwd(), outFile)}`);
  if (writeMd) {
    writeFileSync(join(ROOT, 'BENCHMARKS.md'), renderMarkdown(results, separateRuns(outFile)));
    progress('wrote BENCHMARKS.md');
  }
  const failed = results.checks.filter((c) => !c.ok);
  for (const c of results.checks) progress(`check ${c.ok ? 'ok    ' : 'FAILED'} ${c.name}: ${c.detail}`);
  if (failed.length) exitCode = 1;
  progress(failed.length ? `${failed.length} check(s) failed` : `done: all ${results.checks.length} checks passed`);
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await stop();
}
process.exit(exitCode);
