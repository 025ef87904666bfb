/** A request the master refuses; rendered as `{"error":{"code","message"}, ...extra}` with `status`. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    /** Fields sent next to `error` in the body (a 412 sends the current `row`). */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const notFound = (what = 'no such route'): HttpError => new HttpError(404, 'not_found', what);

/** 405 carrying the `Allow` header, so clients learn what would have worked. */
export const methodNotAllowed = (method: string, allow: readonly string[]): HttpError =>
  new HttpError(405, 'method_not_allowed', `${method} is not allowed here`, { Allow: allow.join(', ') });
