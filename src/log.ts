/**
 * One small logger for the whole library: warnings and errors by default,
 * more switched on by namespace, the browser's counterpart of
 * `RUST_LOG=vantage_live=debug`.
 *
 *   configureLogging({ filter: 'vantage-live:*' })             // debug and above everywhere
 *   configureLogging({ filter: 'vantage-live:cache=trace' })   // row contents too, cache only
 *   configureLogging({ filter: '' })                           // silent
 *
 * The filter can also come from the VANTAGE_LIVE_LOG variable (Node) or the
 * `vantage-live:log` localStorage key (a page). A page's filter travels with
 * every call to the service worker, which takes it on: one switch for both.
 */
import { InvalidInputError } from './errors.js';

export const LEVELS = ['error', 'warn', 'info', 'debug', 'trace'] as const;
export type Level = (typeof LEVELS)[number];

export type Outcome = 'hit' | 'miss' | 'populated' | 'invalidated' | 'failed' | 'stale';

/** Structured fields of a record. `rows` and `row` are only kept at trace level. */
export interface LogFields {
  cacheKey?: string;
  page?: number;
  id?: string;
  op?: string;
  opId?: string;
  outcome?: Outcome;
  [field: string]: unknown;
}

export interface LogRecord {
  time: number;
  level: Level;
  namespace: string;
  message: string;
  fields: LogFields;
}

export type LogSink = (record: LogRecord) => void;

interface Rule {
  pattern: RegExp;
  level: number;
}

/** What is logged when nothing says otherwise: warnings and errors. */
export const DEFAULT_LOG_FILTER = 'vantage-live:*=warn';

let filterText = DEFAULT_LOG_FILTER;
let rules: Rule[] = [];
let sink: LogSink = (r) => {
  const line = `${r.level.toUpperCase()} ${r.namespace} ${r.message}`;
  if (r.level === 'error') console.error(line, r.fields);
  else if (r.level === 'warn') console.warn(line, r.fields);
  else console.info(line, r.fields);
};

function parseFilter(filter: string): Rule[] {
  return filter
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const [ns = '', level = 'debug'] = part.split('=');
      const index = LEVELS.indexOf(level as Level);
      if (index < 0) throw new InvalidInputError(`Unknown log level "${level}" in "${part}"; use one of ${LEVELS.join(', ')}`);
      const source = ns.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
      return { pattern: new RegExp(`^${source}$`), level: index };
    });
}

/** Set which namespaces log at which level, and where records go. */
export function configureLogging(opts: { filter?: string; sink?: LogSink }): void {
  if (opts.filter !== undefined) {
    rules = parseFilter(opts.filter);
    filterText = opts.filter;
  }
  if (opts.sink) sink = opts.sink;
}

/** The filter in force. */
export function logFilter(): string {
  return filterText;
}

function threshold(namespace: string): number {
  let level = -1;
  for (const rule of rules) if (rule.pattern.test(namespace)) level = rule.level;
  return level;
}

export interface Logger {
  enabled(level: Level): boolean;
  error(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  debug(message: string, fields?: LogFields): void;
  trace(message: string, fields?: LogFields): void;
}

export function logger(namespace: string): Logger {
  const enabled = (level: Level) => LEVELS.indexOf(level) <= threshold(namespace);
  const emit = (level: Level) => (message: string, fields: LogFields = {}) => {
    if (!enabled(level)) return;
    if (level !== 'trace' && ('rows' in fields || 'row' in fields)) {
      const { rows, row, ...rest } = fields;
      fields = Array.isArray(rows) ? { ...rest, rowCount: rows.length } : rest;
    }
    sink({ time: Date.now(), level, namespace, message, fields });
  };
  return {
    enabled,
    error: emit('error'),
    warn: emit('warn'),
    info: emit('info'),
    debug: emit('debug'),
    trace: emit('trace'),
  };
}

function storedFilter(): string | undefined {
  const fromEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.VANTAGE_LIVE_LOG;
  if (fromEnv !== undefined) return fromEnv;
  try {
    return (globalThis as { localStorage?: Storage }).localStorage?.getItem('vantage-live:log') ?? undefined;
  } catch {
    return undefined; // storage blocked for this page
  }
}
configureLogging({ filter: storedFilter() ?? DEFAULT_LOG_FILTER });
