import type { IncomingMessage, ServerResponse } from 'node:http';
import { HttpError } from './errors.js';

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Refuses writes sent by a page from a foreign origin (a browser always sends
 * `Origin` on those). Requests without the header come from non-browser
 * clients such as curl or Node and are allowed.
 */
export function assertWriteOrigin(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const origin = req.headers.origin;
  if (origin === undefined || !WRITE_METHODS.has(req.method ?? '')) return;
  if (!allowed.has(origin)) throw new HttpError(403, 'forbidden_origin', `writes from origin ${origin} are not allowed`);
}

/** Lets pages from allowed origins call the API cross-origin (e.g. a Vite dev server). */
export function setCorsHeaders(req: IncomingMessage, res: ServerResponse, allowed: ReadonlySet<string>): void {
  res.setHeader('Vary', 'Origin');
  const origin = req.headers.origin;
  if (origin === undefined || !allowed.has(origin)) return;
  res.setHeader('Access-Control-Allow-Origin', origin);
  res.setHeader('Access-Control-Expose-Headers', 'Idempotent-Replayed, Retry-After');
  if (req.method === 'OPTIONS') {
    res.setHeader('Access-Control-Allow-Methods', 'GET, POST, PUT, PATCH, DELETE, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Content-Type, Idempotency-Key, Last-Event-ID');
    res.setHeader('Access-Control-Max-Age', '600');
  }
}

/** The default allow-list: the server's own origin under each name it answers to. */
export function defaultOrigins(host: string, port: number): string[] {
  const own = host.includes(':') ? `http://[${host}]:${port}` : `http://${host}:${port}`;
  return [...new Set([own, `http://localhost:${port}`, `http://127.0.0.1:${port}`])];
}
