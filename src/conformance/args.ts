/** The command line of `vantage-live-conformance`, parsed into run options. */
import type { ConformanceOptions } from './run.js';

export const USAGE = `usage: vantage-live-conformance <base-url> <table> [--header 'Name: value']... [--skip group|check[,...]]... [--timeout ms]
  checks a backend against vantage-live's master protocol (docs/protocol.md), with rows of <table> it makes and deletes itself
  groups: list, rows, ids, idempotency, versions, batch, errors, feed; --list prints every check`;

export type Command = { kind: 'run'; options: ConformanceOptions } | { kind: 'help' } | { kind: 'list' };

/** A command line that cannot be run; the message says why in one line. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseArgs(argv: readonly string[]): Command {
  const positional: string[] = [];
  const headers: Record<string, string> = {};
  const skip: string[] = [];
  let timeoutMs: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const value = (): string => {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    if (flag === '--help' || flag === '-h') return { kind: 'help' };
    if (flag === '--list') return { kind: 'list' };
    if (flag === '--header' || flag === '-H') {
      const header = value();
      const colon = header.indexOf(':');
      if (colon <= 0) throw new UsageError(`--header ${JSON.stringify(header)} is not 'Name: value'`);
      headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim();
    } else if (flag === '--skip') {
      skip.push(...value().split(',').map((s) => s.trim()).filter((s) => s !== ''));
    } else if (flag === '--timeout') {
      const raw = value();
      timeoutMs = /^\d+$/.test(raw) ? Number(raw) : NaN;
      if (!(timeoutMs > 0)) throw new UsageError(`--timeout ${raw} is not a positive number of milliseconds`);
    } else if (flag.startsWith('-') && flag !== '-') {
      throw new UsageError(`unknown option ${flag}`);
    } else {
      positional.push(arg);
    }
  }
  if (positional.length !== 2) throw new UsageError(positional.length < 2 ? 'give the base URL and a table name' : `too many arguments: ${positional.slice(2).join(' ')}`);
  const [baseUrl, table] = positional as [string, string];
  return { kind: 'run', options: { baseUrl, table, headers, skip, ...(timeoutMs === undefined ? {} : { timeoutMs }) } };
}
