import { expect } from 'vitest';

/**
 * Rows from the reference master carry their version (`_version`,
 * docs/protocol.md "Versions"). A test that compares a row without naming a
 * version is about the row's fields: there the master's `_version` is left
 * out of the comparison. A test that names a version on the expected side is
 * compared whole (test/integration/conflicts.test.ts, demo-app/server/versions.test.ts).
 */
const VERSION = '_version';
const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

expect.addEqualityTesters([
  function ignoreUnstatedVersion(this: { equals(a: unknown, b: unknown, testers?: unknown[]): boolean }, a: unknown, b: unknown, testers: unknown[]) {
    if (!isPlainObject(a) || !isPlainObject(b) || (VERSION in a) === (VERSION in b)) return undefined;
    const { [VERSION]: _a, ...restA } = a;
    const { [VERSION]: _b, ...restB } = b;
    return this.equals(restA, restB, testers);
  },
]);
