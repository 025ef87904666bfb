/**
 * The results file's shape, and BENCHMARKS.md rendered from it: the header,
 * the summary (each row beside the previous run's value), the figures'
 * sections in order, and the checks. Each figure's file owns its section, its
 * "How", its notes and its summary rows (`FigureReport`, bench/lib/format.ts).
 */
import { coldStartReport, type ColdStartResult } from '../figures/cold-start.js';
import { fanoutReport, type FanoutLevel } from '../figures/fanout.js';
import { flushReport, type FlushRun } from '../figures/flush.js';
import { growthReport, type GrowthLevel } from '../figures/growth.js';
import { invalidationReport, type InvalidationResult } from '../figures/invalidation.js';
import { longTasksReport, type ScrollRun } from '../figures/long-tasks.js';
import { peerReport, type PeerResult } from '../figures/peer.js';
import { prefetchReport, type PrefetchRun } from '../figures/prefetch.js';
import { readsReport, type ReadsResult } from '../figures/reads.js';
import { writesReport, type WritesResult } from '../figures/writes.js';
import type { Check } from './checks.js';
import type { Counts } from './config.js';
import { int, row, type FigureReport, type RunInfo, type SummaryRow } from './format.js';
import type { Machine } from './machine.js';
import type { EntrySize } from './sizes.js';

export type { Check };

export interface Figures {
  reads?: ReadsResult;
  writes?: WritesResult;
  flush?: FlushRun[];
  invalidation?: InvalidationResult;
  coldStart?: ColdStartResult;
  growth?: GrowthLevel[];
  longTasks?: ScrollRun[];
  fanout?: FanoutLevel[];
  prefetch?: PrefetchRun;
  peer?: PeerResult;
}

/** The previous run's summary values, by row id, kept in the results file so that `--report` shows them again. */
export interface PreviousRun {
  startedAt: string;
  commit: string;
  command: string;
  values: Record<string, string>;
}

export interface Results {
  mode: 'full' | 'quick';
  /** The page the vantage-live figures measured from. */
  livePath: string;
  /** Where the browser kept IndexedDB and Cache Storage: persistent profiles on disk, or incognito contexts in memory. */
  storage: 'disk' | 'memory';
  command: string;
  startedAt: string;
  durationS: number;
  machine: Machine;
  counts: Counts;
  figures: Figures;
  /** What an app ships: the page and worker entries, bundled, minified and gzipped (bench/lib/sizes.ts). */
  sizes?: { page: EntrySize; worker: EntrySize };
  errors: Record<string, string>;
  /** 1-minute load average when each figure started and ended: anything well above the bench's own share means other work competed. */
  load: Record<string, [number, number]>;
  checks: Check[];
  previous?: PreviousRun;
}

/** A run of some figures on their own (bench/results/*.json besides latest.json), shown under each figure's section. */
export interface SeparateRun {
  file: string;
  results: Results;
}

type Entry<K extends keyof Figures> = readonly [K, FigureReport<NonNullable<Figures[K]>>];
const entry = <K extends keyof Figures>(key: K, report: FigureReport<NonNullable<Figures[K]>>): Entry<K> => [key, report];

/** The figures' sections, in order. */
const REPORTS = [
  entry('reads', readsReport),
  entry('writes', writesReport),
  entry('flush', flushReport),
  entry('invalidation', invalidationReport),
  entry('coldStart', coldStartReport),
  entry('growth', growthReport),
  entry('longTasks', longTasksReport),
  entry('fanout', fanoutReport),
  entry('prefetch', prefetchReport),
  entry('peer', peerReport),
] as const;

const FILES: Record<keyof Figures, string> = {
  reads: 'reads.ts',
  writes: 'writes.ts',
  flush: 'flush.ts',
  invalidation: 'invalidation.ts',
  coldStart: 'cold-start.ts',
  growth: 'growth.ts',
  longTasks: 'long-tasks.ts',
  fanout: 'fanout.ts',
  prefetch: 'prefetch.ts',
  peer: 'peer.ts',
};

/** Each measured figure with its report; one helper keeps the key and the report's type together. */
function measured(figures: Figures): Array<{ key: keyof Figures; report: FigureReport<unknown>; result: unknown }> {
  return REPORTS.flatMap(([key, report]) => (figures[key] === undefined ? [] : [{ key, report: report as FigureReport<unknown>, result: figures[key] }]));
}

const runInfo = (r: Results): RunInfo => ({ counts: r.counts, livePath: r.livePath, directPatch: r.figures.writes?.directPatch });

/** Every summary row of a run, in order. */
export function summaryRows(r: Results): SummaryRow[] {
  const run = runInfo(r);
  return measured(r.figures).flatMap(({ report, result }) => report.summary?.(result, run) ?? []);
}

/** What the next run shows in its "previous run" column. */
export function previousOf(r: Results): PreviousRun {
  return { startedAt: r.startedAt, commit: r.machine.commit, command: r.command, values: Object.fromEntries(summaryRows(r).map((s) => [s.id, s.ours])) };
}

export function renderMarkdown(r: Results, separate: SeparateRun[] = []): string {
  const m = r.machine;
  const c = r.counts;
  const run = runInfo(r);
  const out: string[] = [];
  const p = (...lines: string[]) => out.push(...lines);

  p(
    '# Benchmarks',
    '',
    '<!-- Generated by bench/run.ts from bench/results/latest.json: edit the figure’s file in bench/figures/ (its section) or bench/lib/report.ts (the rest), not this file. -->',
    '',
    'What vantage-live costs in a real browser, side by side with what an app would otherwise use: a Workbox',
    'CacheFirst service worker, a raw IndexedDB read, a plain `fetch`, and TanStack Query persisted to IndexedDB. All times are in milliseconds,',
    'taken with `performance.now()` inside the page unless said otherwise, given as **p50 / p95 / p99**.',
    'A ratio above 1 means vantage-live is slower than the alternative beside it.',
    '',
    '```sh',
    'npm run bench              # this file and bench/results/latest.json (about 15 minutes)',
    'npm run bench -- --quick   # small counts, bench/results/quick.json only: proves the bench still runs (CI)',
    'npx tsx bench/run.ts --report   # this file again from bench/results/latest.json, measuring nothing',
    '```',
    '',
    `This run: \`${r.command}\`${r.command.startsWith('npm run bench') ? '' : ' (what `npm run bench` runs)'}, ${r.startedAt}, ${Math.round(r.durationS / 60)} min${r.mode === 'quick' ? ' (**quick mode: small counts, not for comparison**)' : ''}.`,
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    `| CPU | ${m.cpu}, ${m.cores} cores |`,
    `| memory | ${m.memoryGiB} GiB |`,
    `| OS | ${m.os} |`,
    `| browser | ${m.browser} |`,
    `| Node | ${m.node} (runs the bench and the reference master, same process) |`,
    `| code | commit ${m.commit}${m.dirty ? ' plus uncommitted changes in src/, sw/ or demo-app/' : ''}; demo build ${m.demoBuild} |`,
    '',
  );

  if (Object.keys(r.errors).length) {
    p('**Figures that could not be measured in this run:**', '', ...Object.entries(r.errors).map(([k, v]) => `- ${k}: ${v}`), '');
  }

  if (r.sizes) {
    const kb = (n: number) => `${(n / 1000).toFixed(1)} kB`;
    p('## What an app ships', '', `The page entry (\`vantage-live/page\`) is ${kb(r.sizes.page.gzipBytes)} gzipped (${kb(r.sizes.page.bytes)} minified); the worker entry (\`vantage-live/worker\`) ${kb(r.sizes.worker.gzipBytes)} gzipped (${kb(r.sizes.worker.bytes)} minified). How: each entry bundled with its dependencies by Vite in library mode, minified, then gzipped (bench/lib/sizes.ts).`, '');
  }

  const prev = r.previous;
  p(
    '## Summary',
    '',
    prev
      ? `The previous run: \`${prev.command}\`, ${prev.startedAt}, commit ${prev.commit}; its vantage-live value is in the second column (– where it did not measure the row).`
      : 'No previous run is recorded in this results file (`--previous=FILE` names one).',
    '',
    '| vantage-live | p50 / p95 / p99 | the previous run | alternative | p50 / p95 / p99 | ratio p50 | ratio p95 |',
    '|---|---|---|---|---|---|---|',
    ...summaryRows(r).map((s) => row([s.label, s.ours, prev?.values[s.id] ?? '–', s.alternative, s.theirs, s.ratioP50, s.ratioP95])),
    '',
  );

  for (const [key, entryReport] of REPORTS) {
    const report = entryReport as FigureReport<unknown>;
    const result: unknown = r.figures[key];
    const alone = separate.filter((s) => s.results.figures[key] !== undefined);
    if (result === undefined && alone.length === 0) continue;
    p(`## ${report.title}`, '');
    if (result !== undefined) p(...report.tables(result, run), '');
    else p('Not measured in this run.', '');
    for (const s of alone) {
      const load = s.results.load?.[key];
      p(
        `Measured on its own: \`${s.results.command}\`, ${s.results.startedAt}, commit ${s.results.machine.commit}${load ? `, load average ${load[0]} / ${load[1]}` : ''} (\`${s.file}\`):`,
        '',
        ...report.tables(s.results.figures[key], runInfo(s.results)),
        '',
      );
    }
    const howFrom = result !== undefined ? { result, run } : { result: alone[0]!.results.figures[key], run: runInfo(alone[0]!.results) };
    p(`How (\`bench/figures/${FILES[key]}\`): ${report.how(howFrom.result, howFrom.run)}`, '');
    if (report.notes) p(...report.notes.flatMap((n) => [n, '']));
  }

  const slower = measured(r.figures).flatMap(({ report, result }) => report.slower?.(result, run) ?? []);
  if (slower.length) p('## Where vantage-live is slower, and why', '', ...slower, '');

  p(
    '## Method',
    '',
    '- The reference master (`demo-app/server`, `startMaster`) runs in the bench’s Node process with a temporary SQLite file, ' +
      `${int(c.seedRows)} generated rows and chaos on (\`POST /admin/chaos\` sets the added latency). It serves a temporary copy of ` +
      '`demo-app/dist` plus the bench pages, so everything is one origin.',
    `- Figures 1–4, 6, 7, 9 and vantage-live’s side of 10 measure from \`${r.livePath}\`${r.livePath === '/bench/live.html' ? ' (`bench/site/live-page.ts`): the demo’s page contract (`window.live` and friends), wired exactly as `demo-app/src/connect.ts` wires it, against the demo’s own `/sw.js`, but without the demo UI, whose widgets re-read on every table event and would compete with what is timed. `--page=demo` measures from the demo UI instead; figure 1 also shows the hit from it' : ''}. Figure 5 uses the demo UI.`,
    (r.storage === 'disk'
      ? '- Every figure starts from a fresh persistent browser profile in a temp directory (its own browser process, worker, IndexedDB and Cache Storage, all on disk as in a user’s browser; Playwright’s default incognito contexts keep storage in memory, which flatters every IndexedDB figure). `--storage=memory` measures that instead.'
      : '- **Storage in memory** (`--storage=memory`): every figure starts from a fresh incognito context, whose IndexedDB and Cache Storage never touch the disk; a user’s browser is slower.') +
      ' Chaos is reset after each figure.',
    '- Percentiles are nearest-rank over the timed iterations; untimed warm-up iterations come first. There are no timing assertions: ' +
      'the run fails only when a correctness check fails or a figure cannot be measured.',
    `- Counts of this run: ${Object.entries(c).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join('/') : v}`).join(', ')}.`,
    `- The ${m.cores} cores are shared by Chromium (page, worker, browser and storage processes), the master and the bench; absolute numbers are ` +
      'for this machine only, the ratios travel better. 1-minute load average at the start / end of each figure: ' +
      `${Object.entries(r.load ?? {}).map(([k, [a, b]]) => `${k} ${a} / ${b}`).join(', ') || '–'}.`,
    '',
    '## Checks',
    '',
    ...(r.checks.length ? r.checks.map((ch) => `- ${ch.ok ? '✅' : '❌'} ${ch.name}: ${ch.detail}`) : ['- none ran']),
    '',
  );
  return out.join('\n');
}
