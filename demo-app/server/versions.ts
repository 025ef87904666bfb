import { HttpError } from './errors.js';
import type { Write } from './storage/types.js';
import type { Row } from './validate.js';

/**
 * Every row the master sends carries its version under this name, and a row
 * answer also as an `ETag`. The master owns the field: it is dropped from
 * request bodies, so a row read back and sent again (PUT) is fine, and no
 * user field can take its place (docs/protocol.md, "Versions").
 */
export const VERSION_FIELD = '_version';

/** The version as an ETag: a strong, quoted tag. */
export const etagOf = (version: number): string => `"${version}"`;

/** A stored row with its version, as the master sends it. */
export const withVersion = (row: Row, version: number): Row => ({ ...row, [VERSION_FIELD]: version });

/** The ETag header of an answer whose body is a row; none for other answers. */
export function etagHeader(body: unknown): Record<string, string> {
  const version = (body as { [VERSION_FIELD]?: unknown } | null)?.[VERSION_FIELD];
  return typeof version === 'number' ? { ETag: etagOf(version) } : {};
}

/** The `If-Match` tags (`*` for any current row) of a request's header or a batch op's `ifMatch`, or undefined without one. */
export function ifMatch(header: string | undefined): string[] | undefined {
  if (header === undefined) return undefined;
  return header.split(',').map((tag) => tag.trim()).filter((tag) => tag !== '');
}

/**
 * The write, refused with 412 unless the row's current version is one of
 * `tags`. Checked inside the write's transaction (`decide`), on the row the
 * write then changes, so no other write can land in between. The 412 carries
 * the current row (null when it is gone) and its ETag, for the client's
 * conflict handling.
 */
export function precondition(write: Write, tags: string[] | undefined): Write {
  if (tags === undefined) return write;
  return {
    ...write,
    decide: (existing) => {
      const version = existing?.[VERSION_FIELD];
      const matches = existing !== undefined && (tags.includes('*') || (typeof version === 'number' && tags.includes(etagOf(version))));
      if (!matches) {
        const current = existing === undefined ? 'it does not exist' : `it is at ${etagOf(version as number)}`;
        throw new HttpError(412, 'precondition_failed', `${write.table}/${write.id} changed since ${tags.join(', ')}: ${current}`, etagHeader(existing), {
          row: existing ?? null,
        });
      }
      return write.decide(existing);
    },
  };
}

/** A row's JSON as stored: without its version, which has a column of its own. */
export function storedBody(row: Row): string {
  const { [VERSION_FIELD]: _version, ...rest } = row;
  return JSON.stringify(rest);
}

/** A stored row as the master sends it. */
export const readStored = (body: string, version: number): Row => withVersion(JSON.parse(body) as Row, version);
