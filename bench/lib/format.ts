/**
 * What a figure's file gives the report (bench/lib/report.ts): its section of
 * BENCHMARKS.md, its rows of the summary, and where vantage-live is slower than
 * the alternative beside it; with the number formats they share.
 */
import type { Counts } from './config.js';
import { ratio, type Summary } from './stats.js';

/** What a section may need beyond its own result. */
export interface RunInfo {
  counts: Counts;
  /** The page figures 1–4, 6 and 7 measured from. */
  livePath: string;
  /** Figure 2's direct PATCH, the flush's alternative (sequential PATCHes), when this run measured it. */
  directPatch?: Summary;
}

/** One summary row. `id` names it across runs: the previous run's value is found by it. */
export interface SummaryRow {
  id: string;
  label: string;
  /** vantage-live's value, formatted. */
  ours: string;
  alternative: string;
  theirs: string;
  ratioP50: string;
  ratioP95: string;
}

export interface FigureReport<T> {
  /** "N. Title": the section's heading. */
  title: string;
  /** The section's tables for one run's result (also used for a run measured on its own, bench/results/*.json). */
  tables(result: T, run: RunInfo): string[];
  /** The "How" paragraph. */
  how(result: T, run: RunInfo): string;
  /** Hand-written paragraphs kept with the figure (findings, what a run measured on its own showed), shown after the tables. */
  notes?: string[];
  summary?(result: T, run: RunInfo): SummaryRow[];
  /** Where vantage-live is slower than the alternative beside it, and why: `- **title.** text` lines. */
  slower?(result: T, run: RunInfo): string[];
}

export const ms = (x: number | undefined): string => {
  if (x === undefined || !Number.isFinite(x)) return '–';
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x >= 0.1 ? x.toFixed(2) : x.toFixed(3);
};
export const times = (x: number): string => (Number.isFinite(x) ? `×${x.toFixed(2)}` : '–');
export const mb = (b: number | undefined): string => (b === undefined || !Number.isFinite(b) ? '–' : `${(b / 1048576).toFixed(1)} MB`);
export const int = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
export const pct = (s: Summary | undefined): string => (s ? `${ms(s.p50)} / ${ms(s.p95)} / ${ms(s.p99)}` : '–');
export const row = (cells: Array<string | number>): string => `| ${cells.join(' | ')} |`;
/** A table of timings, one row per label: p50 / p95 / p99, mean, n. `first`: the first column's heading. */
export const timingTable = (rows: Array<readonly [string, Summary]>, first = ''): string[] => [
  `|${first ? ` ${first} ` : ' '}| p50 / p95 / p99 | mean | n |`,
  '|---|---|---|---|',
  ...rows.map(([label, s]) => row([label, pct(s), ms(s.mean), s.n])),
];
export const slowerLine = (title: string, text: string): string => `- **${title}.** ${text}`;
/** A `slower` line when vantage-live is slower by `ratio` (above 1), none otherwise. */
export const slowerBy = (ratio: number, title: string, text: string): string[] => (ratio > 1 ? [slowerLine(`${title} (${times(ratio)})`, text)] : []);

/** A summary row comparing vantage-live's timing with an alternative's, at p50 and p95 (a ratio above 1: vantage-live is slower). */
export function vs(id: string, label: string, ours: Summary | undefined, alternative: string, theirs: Summary | undefined): SummaryRow {
  return { id, label, ours: pct(ours), alternative, theirs: pct(theirs), ratioP50: times(ratio(ours?.p50, theirs?.p50)), ratioP95: times(ratio(ours?.p95, theirs?.p95)) };
}
