import { readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

describe('the README', () => {
  it("has a code example that compiles against the library's types", () => {
    const readme = readFileSync('README.md', 'utf8');
    const example = /```ts\n(import [\s\S]*?from 'vantage-live';[\s\S]*?)```/.exec(readme)?.[1];
    expect(example).toBeDefined();
    const dir = mkdtempSync(join('test', '.readme-'));
    const file = join(dir, 'example.ts');
    writeFileSync(file, `export {};\n${example!.replace("from 'vantage-live'", "from '../../src/index.js'")}`);
    try {
      execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '--noEmit', '--strict', '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--lib', 'ES2023,DOM', '--types', 'node', '--skipLibCheck', file], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(String((err as { stdout?: Buffer }).stdout));
    } finally {
      execFileSync('rm', ['-rf', dir]);
    }
  });
});
