import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const entries: Record<string, string> = {
  'vantage-live': '../../src/index.js',
  'vantage-live/page': '../../src/page.js',
  'vantage-live/worker': '../../src/worker.js',
  'vantage-live/worker-shell': '../../src/worker-shell.js',
  'vantage-live/vite': '../../src/vite.js',
};

describe('the README', () => {
  it("has code examples that compile against the library's types", () => {
    const blocks = [...readFileSync('README.md', 'utf8').matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const dir = mkdtempSync(join('test', '.readme-'));
    try {
      const files = blocks.map((code, i) => {
        const file = join(dir, `example-${i}.ts`);
        writeFileSync(file, `export {};\n${code.replace(/from '(vantage-live[^']*)'/g, (_m, name: string) => `from '${entries[name]}'`)}`);
        return file;
      });
      execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2023,DOM,WebWorker', '--types', 'node', '--skipLibCheck', ...files], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(String((err as { stdout?: Buffer }).stdout ?? err));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000); // a whole tsc run over the library: 5 s alone, a minute on a loaded machine
});
