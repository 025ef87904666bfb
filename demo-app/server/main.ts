import { existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDuration } from './auth/duration.js';
import { parseUsersFile, parseUsersList } from './auth/users.js';
import type { Users } from './auth/users.js';
import { normaliseOrigin } from './origin.js';
import { DEFAULT_SESSION_TTL_MS, startMaster } from './server.js';
import type { AuthOptions, MasterOptions } from './server.js';

const USAGE = `usage: tsx demo-app/server/main.ts [--port 8787] [--host 127.0.0.1] [--db ./demo-master.sqlite | --pg postgres://USER@HOST:PORT/DB]
       [--seed] [--seed-rows N] [--chaos] [--static DIR]
       [--allowed-origin URL]... [--allowed-host NAME:PORT]... [--admin-token TOKEN]
       [--max-connections N] [--max-connections-per-client N]
       [--auth (--users NAME:PASSWORD,... | --users-file PATH) [--session-ttl 12h]]`;

/** A command-line mistake: printed as one line, exit code 2. */
class UsageError extends Error {}

function intOption(value: string | undefined, name: string, fallback: number, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = /^\d{1,15}$/.test(value) ? Number(value) : NaN;
  if (!(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `of at least ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got "${value}"`);
  }
  return n;
}

// parseArgs explains its errors at length; one line saying what to do is enough.
function parseError(err: unknown): UsageError {
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  const option = /'(-[^' ]+)/.exec(message)?.[1] ?? '';
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return new UsageError(`unknown option ${option}: see --help for the options`);
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') return new UsageError(`${option} needs a value: see --help`);
  if (code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return new UsageError(`unexpected argument ${message.match(/'([^']*)'/)?.[1] ?? ''}: options start with --, see --help`);
  return new UsageError(`${message.split('\n')[0]}: see --help`);
}

// Sessions shorter than a request are useless; longer than a year are not sessions.
const MAX_SESSION_TTL_MS = 366 * 24 * 60 * 60 * 1000;

function authOptions(on: boolean, list: string | undefined, file: string | undefined, ttl: string | undefined): AuthOptions | undefined {
  if (!on) {
    const stray = list !== undefined ? '--users' : file !== undefined ? '--users-file' : ttl !== undefined ? '--session-ttl' : undefined;
    if (stray !== undefined) throw new UsageError(`${stray} needs --auth`);
    return undefined;
  }
  if (list !== undefined && file !== undefined) throw new UsageError('pass --users or --users-file, not both');
  if (list === undefined && file === undefined) throw new UsageError('--auth needs --users NAME:PASSWORD,... or --users-file PATH');
  let users: Users;
  try {
    users = list !== undefined ? parseUsersList(list) : parseUsersFile(readUsersFile(file as string), file as string);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (ttl === undefined) return { users };
  const sessionTtlMs = parseDuration(ttl);
  if (sessionTtlMs === undefined || sessionTtlMs < 1 || sessionTtlMs > MAX_SESSION_TTL_MS) {
    throw new UsageError(`--session-ttl must be a duration like 500ms, 30s, 5m, 12h or 7d (at most 366d), got "${ttl}"`);
  }
  return { users, sessionTtlMs };
}

function readUsersFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new UsageError(`--users-file ${path}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(err)})`}`);
  }
}

function readOptions(argv: string[]): MasterOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        db: { type: 'string' },
        pg: { type: 'string' },
        seed: { type: 'boolean' },
        'seed-rows': { type: 'string' },
        chaos: { type: 'boolean' },
        static: { type: 'string' },
        'allowed-origin': { type: 'string', multiple: true },
        'allowed-host': { type: 'string', multiple: true },
        'admin-token': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-connections-per-client': { type: 'string' },
        auth: { type: 'boolean' },
        users: { type: 'string' },
        'users-file': { type: 'string' },
        'session-ttl': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    throw parseError(err);
  }
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const allowedOrigins = (values['allowed-origin'] ?? []).map((o) => {
    try {
      return normaliseOrigin(o);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  });
  for (const host of values['allowed-host'] ?? []) {
    if (!/^[a-z0-9.-]+(:\d{1,5})?$|^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(host)) {
      throw new UsageError(`--allowed-host must be a host name with an optional :port as browsers send it, got "${host}"`);
    }
  }
  const token = values['admin-token'];
  if (token !== undefined && !/^[\x21-\x7e]{16,}$/.test(token)) {
    throw new UsageError('--admin-token must be at least 16 visible ASCII characters without spaces');
  }
  const limits = {
    ...(values['max-connections'] === undefined ? {} : { maxConnections: intOption(values['max-connections'], 'max-connections', 0, 1) }),
    ...(values['max-connections-per-client'] === undefined
      ? {}
      : { maxConnectionsPerClient: intOption(values['max-connections-per-client'], 'max-connections-per-client', 0, 1) }),
  };
  const auth = authOptions(values.auth === true, values.users, values['users-file'], values['session-ttl']);
  const pg = values.pg;
  if (pg !== undefined && values.db !== undefined) throw new UsageError('pass --db (SQLite) or --pg (PostgreSQL), not both');
  if (pg !== undefined && !/^postgres(ql)?:\/\//.test(pg)) throw new UsageError(`--pg must be a URL like postgres://user:password@host:5432/db, got "${pg}"`);
  const staticDir = values.static ?? (existsSync('demo-app/dist') ? 'demo-app/dist' : undefined);
  if (staticDir !== undefined && !existsSync(staticDir)) throw new UsageError(`--static ${staticDir}: no such directory`);
  return {
    ...(pg === undefined ? { dbPath: values.db ?? './demo-master.sqlite' } : { pg }),
    port: intOption(values.port, 'port', 8787, 0, 65535),
    host: values.host ?? '127.0.0.1',
    seed: values.seed === true,
    seedRows: intOption(values['seed-rows'], 'seed-rows', 0, 0, 10_000_000),
    chaos: values.chaos === true,
    allowedOrigins,
    allowedHosts: values['allowed-host'] ?? [],
    limits,
    ...(token === undefined ? {} : { adminToken: token }),
    ...(auth === undefined ? {} : { auth }),
    ...(staticDir === undefined ? {} : { staticDir }),
  };
}

/** host:port of a connection URL, without the password. */
function postgresServer(url: string): string {
  try {
    const { hostname, port } = new URL(url);
    return `${hostname || 'localhost'}:${port || '5432'}`;
  } catch {
    return 'the --pg URL';
  }
}

/** Why the master could not start, as one line saying what to do. */
function startFailure(err: unknown, options: MasterOptions): string {
  const code = (err as { code?: string }).code;
  const where = `${options.host}:${options.port}`;
  if (code === 'EADDRINUSE') return `port ${options.port} is in use on ${options.host}: stop the other server or pass --port N (0 picks a free one)`;
  if (code === 'EACCES') return `no permission to listen on ${where}: use a port above 1023`;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') return `cannot listen on ${where}: --host must be an address of this machine`;
  if (options.pg !== undefined) {
    const server = postgresServer(options.pg);
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EHOSTUNREACH' || /timeout/i.test(String(err))) {
      return `cannot reach PostgreSQL at ${server}: check that it is running and that --pg names its host and port`;
    }
    if (code === '28P01' || code === '28000') return `PostgreSQL at ${server} refused the login: check the user and password in --pg`;
    if (code === '3D000') return `PostgreSQL at ${server} has no such database: create it (createdb NAME) or fix --pg`;
    return `cannot use PostgreSQL at ${server}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
  }
  if (code?.startsWith('SQLITE_CANTOPEN') === true || /unable to open database|directory does not exist/i.test(String(err))) {
    return `cannot open the database ${options.dbPath}: check that its directory exists and is writable, or pass --db PATH`;
  }
  return `cannot start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
}

async function main(): Promise<void> {
  let options: MasterOptions;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof UsageError ? err.message : `bad arguments: ${String(err)}`);
    process.exit(2);
  }
  let master;
  try {
    master = await startMaster(options);
  } catch (err) {
    console.error(startFailure(err, options));
    process.exit(1);
  }
  console.log(`vantage-live master listening on ${master.url}`);
  if (options.pg !== undefined) console.log(`storage: PostgreSQL at ${postgresServer(options.pg)} (other masters on the same database share its rows and change feed)`);
  console.log(`admin token: ${master.adminToken} (send as "Authorization: Bearer <token>" to /admin)`);
  if (options.chaos === true) console.log('fault injection enabled at /admin/chaos');
  if (options.auth !== undefined) {
    const ttl = options.auth.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    console.log(`auth: ${Object.keys(options.auth.users).length} users; /api needs a session from POST /auth/login, which lasts ${ttl} ms`);
  }
  if (options.staticDir !== undefined) console.log(`serving ${options.staticDir} at /`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    // A second signal means the operator will not wait: exit right away.
    if (stopping) process.exit(1);
    stopping = true;
    console.log(`${signal}: closing`);
    master.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`closing failed: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
