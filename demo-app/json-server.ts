/**
 * json-server 0.17 (the npm package, a server no one here wrote) in a child
 * process on a free port, over a JSON data file: the third-party backend of
 * the demo's `api` mode and of the json-server adapter's tests.
 */
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Row } from '../src/types.js';

export interface JsonServer {
  /** e.g. "http://127.0.0.1:40123": a RestTable's apiBase. */
  url: string;
  stop(): Promise<void>;
}

export const SAMPLE_PRODUCTS: Row[] = [
  { id: 'a', name: 'Apple Pie', price: 12 },
  { id: 'b', name: 'Brioche', price: 8 },
  { id: 'c', name: 'Cinnamon Roll', price: 15 },
];

/** Writes `file` with sample products unless it exists. Returns whether it wrote one. */
export function ensureDataFile(file: string, rows: Row[] = SAMPLE_PRODUCTS): boolean {
  if (existsSync(file)) return false;
  writeFileSync(file, `${JSON.stringify({ products: rows }, null, 2)}\n`);
  return true;
}

// Runs in the child: json-server's own module API (the same parts its CLI uses), listening on port 0.
const CHILD = `
const jsonServer = require(process.env.JSON_SERVER);
const app = jsonServer.create();
app.use(jsonServer.defaults({ logger: false, noGzip: true }));
app.use(jsonServer.router(process.env.DATA_FILE));
const server = app.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: server.address().port }) + '\\n'));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`;

export function startJsonServer(dataFile: string): Promise<JsonServer> {
  const child = spawn(process.execPath, ['-e', CHILD], {
    env: { ...process.env, JSON_SERVER: createRequire(import.meta.url).resolve('json-server'), DATA_FILE: dataFile },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n')[0];
      if (!out.includes('\n') || !line) return;
      const { port } = JSON.parse(line) as { port: number };
      resolve({
        url: `http://127.0.0.1:${port}`,
        async stop() {
          if (child.exitCode === null) child.kill('SIGTERM');
          await exited;
        },
      });
    });
    child.once('exit', (code) => reject(new Error(`json-server exited (${code}) before listening: ${stderr.trim().split('\n')[0] ?? ''}`)));
  });
}
