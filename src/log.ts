/**
 * One small logger for the whole library: silent by default, switched on by
 * namespace, the browser's counterpart of `RUST_LOG=vantage_live=debug`.
 *
 *   configureLogging({ filter: 'vantage-live:*' })             // debug and above everywhere
 *   configureLogging({ filter: 'vantage-live:cache=trace' })   // row contents too, cache only
 *
 * In Node the filter can also come from the VANTAGE_LIVE_LOG variable.
 */
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

let rules: Rule[] = [];
let sink: LogSink = (r) => console.error(`${r.level.toUpperCase()} ${r.namespace} ${r.message}`, r.fields);

function parseFilter(filter: string): Rule[] {
  return filter
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const [ns = '', level = 'debug'] = part.split('=');
      const index = LEVELS.indexOf(level as Level);
      if (index < 0) throw new Error(`Unknown log level "${level}" in "${part}"; use one of ${LEVELS.join(', ')}`);
      const source = ns.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*');
      return { pattern: new RegExp(`^${source}$`), level: index };
    });
}

/** Set which namespaces log at which level, and where records go. */
export function configureLogging(opts: { filter?: string; sink?: LogSink }): void {
  if (opts.filter !== undefined) rules = parseFilter(opts.filter);
  if (opts.sink) sink = opts.sink;
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

const fromEnv = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.VANTAGE_LIVE_LOG;
if (fromEnv) configureLogging({ filter: fromEnv });
