/**
 * The one id rule, shared by the client (checked before anything is queued)
 * and the reference master, and written in docs/protocol.md. An id must
 * survive a URL path unchanged: `.` and `..` are removed by URL rules even when
 * percent-encoded (`%2e`), `/` splits a path behind proxies that decode `%2F`,
 * control characters and lone surrogates cannot be encoded at all.
 */
export const MAX_ID_LENGTH = 256;

/** Why `id` breaks the id rule, or undefined when it is a valid id. */
export function idProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return `an id is a string, got ${id === null ? 'null' : typeof id}`;
  if (id.length === 0) return 'an id is never empty';
  if (id.length > MAX_ID_LENGTH) return `an id has at most ${MAX_ID_LENGTH} characters, this one ${id.length}`;
  if (id === '.' || id === '..') return `"${id}" is not an id: URL rules turn it into another path`;
  if (id.includes('/')) return 'an id has no "/"';
  if (/[\u0000-\u001f\u007f]/.test(id)) return 'an id has no control characters';
  if (/\p{Surrogate}/u.test(id.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, ''))) return 'an id is well-formed Unicode (no lone surrogates)';
  return undefined;
}

/** An id as one URL path segment: every character but unreserved ones percent-encoded. */
export function idPathSegment(id: string): string {
  return encodeURIComponent(id);
}
