import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, resolve, sep } from 'node:path';
import { methodNotAllowed, notFound } from './errors.js';

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

// Both decide which version of the app a browser runs, so they must be
// revalidated on every load or an update never reaches users.
const ALWAYS_REVALIDATE = new Set(['index.html', 'sw.js']);

// Rejects anything that could step outside the root (or into dotfiles)
// before the path is ever built.
const isSafeSegment = (s: string): boolean => s !== '' && !s.startsWith('.') && !/[\\/\0]/.test(s);

// Source maps give away the source; the build writes them for local debugging only.
const isServable = (name: string): boolean => !name.toLowerCase().endsWith('.map');

/** Serves a file from `root` for GET/HEAD; `/` means `index.html`. */
export async function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, segments: string[]): Promise<void> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') throw methodNotAllowed(method, ['GET', 'HEAD']);
  const parts = segments.length === 0 ? ['index.html'] : segments;
  if (!parts.every(isSafeSegment) || !isServable(parts.at(-1) ?? '')) throw notFound();
  const base = resolve(root);
  const file = resolve(base, ...parts);
  if (!file.startsWith(base + sep)) throw notFound();
  const info = await stat(file).catch(() => undefined);
  if (info === undefined || !info.isFile()) throw notFound();

  const name = parts.at(-1) ?? '';
  const headers: Record<string, string | number> = {
    'Content-Type': CONTENT_TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream',
    'Content-Length': info.size,
  };
  if (ALWAYS_REVALIDATE.has(name)) headers['Cache-Control'] = 'no-cache';
  res.writeHead(200, headers);
  if (method === 'HEAD') {
    res.end();
    return;
  }
  createReadStream(file)
    .on('error', () => res.destroy())
    .pipe(res);
}
