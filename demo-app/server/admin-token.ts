import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './errors.js';

/** A fresh token for `/admin`, when none was given. */
export const newAdminToken = (): string => randomBytes(24).toString('base64url');

const digest = (text: string): Buffer => createHash('sha256').update(text).digest();

/**
 * Lets `/admin` requests through that carry `Authorization: Bearer <token>`.
 *
 * With `trustSameOriginPages` (chaos mode, a test rig) a request from a page
 * of this origin passes too: the demo's simulate panel must reach `/admin`
 * and has no way to be handed a secret. `Sec-Fetch-Site` is set by the
 * browser and page script cannot change it, so a foreign page never passes;
 * a non-browser client can send it, which is why this is chaos mode only.
 */
export function assertAdmin(req: IncomingMessage, token: string, trustSameOriginPages: boolean): void {
  if (trustSameOriginPages && req.headers['sec-fetch-site'] === 'same-origin') return;
  const given = /^Bearer +(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
  // Compared as digests: equal lengths for timingSafeEqual, and no timing hint about the token.
  if (given !== undefined && timingSafeEqual(digest(given), digest(token))) return;
  throw new HttpError(401, 'admin_token_required', '/admin needs Authorization: Bearer <token>; the master prints its token at start', {
    'WWW-Authenticate': 'Bearer realm="vantage-live admin"',
  });
}
