import type { ServerResponse } from 'node:http';

/**
 * The Content-Security-Policy of served pages: everything from this origin,
 * nothing inline, no framing. `connect-src 'self'` covers the same-origin
 * API and its ws: feed (CSP Level 3).
 */
export const DEFAULT_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "worker-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

// API answers are data, never a document: nothing may run or frame them.
const API_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Headers every answer carries; `pageCsp` for static files, a locked-down one otherwise. */
export function setSecurityHeaders(res: ServerResponse, pageCsp: string | undefined): void {
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('X-Frame-Options', 'DENY');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Content-Security-Policy', pageCsp ?? API_CSP);
}
