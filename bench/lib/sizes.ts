/**
 * What an app ships: the page entry (`vantage-live/page`) and the worker entry
 * (`vantage-live/worker`), each bundled with its dependencies and minified as
 * an app's production build would, then gzipped.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { build } from 'vite';

export interface EntrySize {
  bytes: number;
  gzipBytes: number;
}

const ROOT = resolve(import.meta.dirname, '../..');

export async function entrySizes(): Promise<{ page: EntrySize; worker: EntrySize }> {
  const dir = mkdtempSync(join(tmpdir(), 'vl-sizes-'));
  try {
    const measure = async (entry: string): Promise<EntrySize> => {
      await build({
        configFile: false,
        logLevel: 'warn',
        build: { outDir: dir, emptyOutDir: false, minify: true, lib: { entry: join(ROOT, entry), formats: ['es'], fileName: () => `${entry.replace(/\W/g, '_')}.js` } },
      });
      const code = readFileSync(join(dir, `${entry.replace(/\W/g, '_')}.js`));
      return { bytes: code.length, gzipBytes: gzipSync(code).length };
    };
    return { page: await measure('src/page.ts'), worker: await measure('src/worker.ts') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
