/**
 * How a check says what it expected and what came back: one failed
 * expectation ends the check with a message of the form
 * `<step>: expected <this>, got <that>`.
 */
import type { Answer } from './http.js';

/** A check found the backend doing something other than the protocol says. */
export class CheckFailed extends Error {
  override readonly name = 'CheckFailed';
}

/** Ends the check: `step` is what was sent, `expected` what the protocol asks for, `got` what came back. */
export function fail(step: string, expected: string, got: string): never {
  throw new CheckFailed(`${step}: expected ${expected}, got ${got}`);
}

/** An answer in a line: the status, the headers that matter here, and the body shortened. */
export function describeAnswer(answer: Answer): string {
  const replayed = answer.headers['idempotent-replayed'];
  const extra = replayed === undefined ? '' : ` (Idempotent-Replayed: ${String(replayed)})`;
  const body = answer.text.length > 200 ? `${answer.text.slice(0, 200)}...` : answer.text;
  return `${answer.status}${extra}${body === '' ? ' with no body' : ` ${body}`}`;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The answer is a JSON object with `status`; returns it. */
export function expectRow(step: string, answer: Answer, status: number, fields: Record<string, unknown>): Record<string, unknown> {
  const body = answer.json;
  if (answer.status !== status || !isObject(body)) fail(step, `${status} with the row ${JSON.stringify(fields)}`, describeAnswer(answer));
  const wrong = Object.entries(fields).filter(([k, v]) => JSON.stringify(body[k]) !== JSON.stringify(v));
  if (wrong.length > 0) fail(step, `${status} with the row ${JSON.stringify(fields)}`, describeAnswer(answer));
  return body;
}

/**
 * The answer is an error of the protocol's shape: `status`, a JSON body
 * `{"error":{"code","message"}}`, and `code` when one is given.
 */
export function expectError(step: string, answer: Answer, status: number, code?: string): void {
  const expected = `${status} {"error":{"code":${code === undefined ? '...' : JSON.stringify(code)},"message":...}}`;
  if (answer.status !== status) fail(step, expected, describeAnswer(answer));
  const error = isObject(answer.json) ? answer.json.error : undefined;
  if (!isObject(error) || typeof error.code !== 'string' || typeof error.message !== 'string') fail(step, expected, describeAnswer(answer));
  if (code !== undefined && error.code !== code) fail(step, expected, describeAnswer(answer));
  const type = answer.headers['content-type'] ?? '';
  if (!/^application\/json\b/i.test(type)) fail(step, `${expected} as application/json`, `Content-Type ${type === '' ? '(none)' : type}`);
}
