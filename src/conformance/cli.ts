#!/usr/bin/env node
/**
 * `vantage-live-conformance <base-url> <table>`: prints one PASS, FAIL or SKIP
 * line per check and exits 1 when any check failed, 2 when the run could not
 * start (bad arguments, a backend that cannot be reached).
 */
import { parseArgs, USAGE, UsageError } from './args.js';
import { CHECKS, ConformanceSetupError, formatResult, runConformance } from './run.js';

async function main(argv: readonly string[]): Promise<number> {
  const command = parseArgs(argv);
  if (command.kind === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command.kind === 'list') {
    for (const c of CHECKS) console.log(`${c.id}  ${c.title}`);
    return 0;
  }
  const results = await runConformance({ ...command.options, onResult: (r) => console.log(formatResult(r)) });
  const count = (outcome: string): number => results.filter((r) => r.outcome === outcome).length;
  console.log(`${count('pass')} passed, ${count('fail')} failed, ${count('skip')} skipped`);
  return count('fail') > 0 ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const known = err instanceof UsageError || err instanceof ConformanceSetupError;
    const message = err instanceof Error ? err.message : String(err);
    const hint = err instanceof UsageError ? ' (see --help)' : '';
    console.error(`vantage-live-conformance: ${known ? message : `unexpected error: ${message}`}${hint}`);
    process.exitCode = 2;
  },
);
