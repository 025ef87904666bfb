/**
 * Vitest globalSetup: one throwaway Postgres cluster per test run, started
 * only when the first test asks for a database (runs that test no Postgres
 * storage never pay for it) and removed at the end. Test workers ask this
 * process for a fresh database over loopback HTTP (`testkit.ts`); each test
 * master gets its own `CREATE DATABASE`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TestProject } from 'vitest/node';
import { startPgCluster } from './storage/pg-cluster.js';
import type { PgCluster } from './storage/pg-cluster.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `POST` here answers `{url}` of a new empty database, or `{error}` in one line. */
    pgTestDatabases: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let cluster: Promise<PgCluster> | undefined;
  let databases = 0;
  const server = createServer((req, res) => {
    cluster ??= startPgCluster();
    cluster
      .then((c) => c.createDatabase(`test_${++databases}`))
      .then(
        (url) => res.end(JSON.stringify({ url })),
        (err: unknown) => res.end(JSON.stringify({ error: err instanceof Error ? err.message : String(err) })),
      );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  project.provide('pgTestDatabases', `http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  return async () => {
    server.close();
    await (await cluster?.catch(() => undefined))?.stop();
  };
}
