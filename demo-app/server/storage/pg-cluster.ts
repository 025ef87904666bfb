/**
 * A throwaway PostgreSQL cluster for tests and the bench: initdb into a temp
 * directory, a server on a free loopback port, removed again by `stop`. Run
 * as the `postgres` user when this process is root (initdb and postgres
 * refuse to run as root).
 */
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

export interface PgCluster {
  /** The URL of database `name` on this cluster. */
  url(name: string): string;
  /** Creates an empty database; resolves to its URL. */
  createDatabase(name: string): Promise<string>;
  stop(): Promise<void>;
}

export interface PgClusterOptions {
  /**
   * Durable (the bench): fsync and synchronous commit on, as in production.
   * Otherwise (tests) both are off: a throwaway cluster need not survive a
   * power cut, and the tests run faster.
   */
  durable?: boolean;
  maxConnections?: number;
}

/** The one line a missing install is reported with. */
export const PG_MISSING = 'PostgreSQL is not installed (no initdb found): run `npm run setup` (or set PG_BIN to its bin directory)';

/** The directory holding initdb, pg_ctl and postgres, or undefined. */
export function findPgBin(): string | undefined {
  const candidates = [process.env.PG_BIN];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => join(root, v, 'bin')));
  }
  candidates.push('/usr/local/pgsql/bin', '/usr/local/bin', '/usr/bin');
  return candidates.find((dir) => dir !== undefined && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl')));
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export async function startPgCluster(opts: PgClusterOptions = {}): Promise<PgCluster> {
  const bin = findPgBin();
  if (bin === undefined) throw new Error(PG_MISSING);
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'vantage-pg-'));
  if (asRoot) chownSync(dir, Number((await run('id', ['-u', 'postgres'])).stdout), Number((await run('id', ['-g', 'postgres'])).stdout));
  const asPostgres = (tool: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, tool), ...args]) : run(join(bin, tool), args);
  const data = join(dir, 'data');
  const stop = async (): Promise<void> => {
    await asPostgres('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-s']).catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '-E', 'UTF8', '--no-sync', '--no-instructions']);
    const port = await freePort();
    const settings = [
      `-p ${port}`,
      `-k ${dir}`,
      "-c listen_addresses='127.0.0.1'",
      `-c max_connections=${opts.maxConnections ?? 300}`,
      ...(opts.durable === true ? [] : ['-c fsync=off', '-c synchronous_commit=off', '-c full_page_writes=off']),
    ];
    await asPostgres('pg_ctl', ['start', '-D', data, '-l', join(dir, 'log'), '-w', '-s', '-o', settings.join(' ')]);
    const url = (name: string): string => `postgres://postgres@127.0.0.1:${port}/${name}`;
    return {
      url,
      createDatabase: async (name) => {
        const client = new pg.Client({ connectionString: url('postgres') });
        await client.connect();
        try {
          await client.query(`CREATE DATABASE "${name.replace(/"/g, '')}"`);
        } finally {
          await client.end();
        }
        return url(name);
      },
      stop,
    };
  } catch (err) {
    await stop();
    const stderr = (err as { stderr?: string }).stderr?.trim().split('\n')[0];
    throw new Error(`cannot start a PostgreSQL test cluster: ${stderr ?? (err as Error).message}`);
  }
}
