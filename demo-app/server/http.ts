import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';
import { isPlainObject } from './validate.js';

/** A request target split into decoded path segments and query. */
export interface Target {
  segments: string[];
  query: URLSearchParams;
}

/**
 * Splits the raw request target without WHATWG URL normalisation, so `..` or
 * `%2F` inside a segment stays visible to the routes instead of silently
 * changing which route matches.
 */
export function parseTarget(rawUrl: string | undefined): Target {
  const url = rawUrl ?? '/';
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  const query = new URLSearchParams(q === -1 ? '' : url.slice(q + 1));
  // A trailing slash stays an empty last segment: `/api/t/` names the empty
  // id (refused), never the collection `/api/t`.
  const parts = path === '/' ? [] : path.split('/').slice(1);
  const segments = parts.map((part) => {
    try {
      return decodeURIComponent(part);
    } catch {
      throw new HttpError(400, 'bad_request', 'malformed percent-encoding in the path');
    }
  });
  return { segments, query };
}

/**
 * Reads the whole body as text. Past `maxBytes` the rest is read and dropped
 * rather than left unread, so the client reliably sees the 413 instead of a
 * reset connection while it is still uploading.
 */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBytes) chunks.push(chunk);
    });
    req.on('end', () => {
      if (size > maxBytes) reject(new HttpError(413, 'too_large', `request body exceeds ${maxBytes} bytes`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    });
    req.on('error', reject);
  });
}

/** Deeper JSON than this is refused: rows are shallow, and recursion over deep values overflows the stack. */
export const MAX_JSON_DEPTH = 32;

/**
 * True when `text` nests arrays/objects deeper than `max`. Counted on the
 * text before parsing: JSON.parse has no depth option and the JSON libraries
 * we would trust with it add none either, and one linear pass is all it takes.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') {
      if (++depth > max) return true;
    } else if (c === '}' || c === ']') depth--;
  }
  return false;
}

/** Parses a body that must be a JSON object; `emptyAs` allows a missing body. */
export function parseJsonObject(text: string, emptyAs?: Record<string, unknown>): Record<string, unknown> {
  if (emptyAs !== undefined && text.trim() === '') return emptyAs;
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new HttpError(400, 'too_deep', `request body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'invalid_json', 'request body is not valid JSON');
  }
  if (!isPlainObject(value)) throw new HttpError(400, 'invalid_body', 'request body must be a JSON object');
  return value;
}

/** Sends a JSON body, or none for `null` (204). */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (body === null || body === undefined) {
    res.writeHead(status, { 'Cache-Control': 'no-store', ...headers });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(text);
}

export function sendError(res: ServerResponse, err: HttpError): void {
  sendJson(res, err.status, { error: { code: err.code, message: err.message }, ...err.extra }, err.headers);
}
