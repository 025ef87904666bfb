import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startMaster } from './server.js';
import type { MasterOptions } from './server.js';

const USAGE = `usage: tsx demo-app/server/main.ts [--port 8787] [--host 127.0.0.1] [--db ./demo-master.sqlite]
       [--seed] [--seed-rows N] [--chaos] [--static DIR]`;

function intOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`--${name} must be a non-negative integer, got "${value}"`);
  return Number(value);
}

function readOptions(argv: string[]): MasterOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: {
      port: { type: 'string' },
      host: { type: 'string' },
      db: { type: 'string' },
      seed: { type: 'boolean' },
      'seed-rows': { type: 'string' },
      chaos: { type: 'boolean' },
      static: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (values.help === true) {
    console.log(USAGE);
    process.exit(0);
  }
  const staticDir = values.static ?? (existsSync('dist/demo') ? 'dist/demo' : undefined);
  return {
    dbPath: values.db ?? './demo-master.sqlite',
    port: intOption(values.port, 'port', 8787),
    host: values.host ?? '127.0.0.1',
    seed: values.seed === true,
    seedRows: intOption(values['seed-rows'], 'seed-rows', 0),
    chaos: values.chaos === true,
    ...(staticDir === undefined ? {} : { staticDir }),
  };
}

async function main(): Promise<void> {
  let options: MasterOptions;
  try {
    options = readOptions(process.argv.slice(2));
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    console.error(USAGE);
    process.exit(2);
  }
  const master = await startMaster(options);
  console.log(`vantage-live master listening on ${master.url}`);
  if (options.chaos === true) console.log('fault injection enabled at /admin/chaos');
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
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
