import type { IncomingMessage } from 'node:http';

/** The session cookie's name. */
export const SESSION_COOKIE = 'vl_session';

/** Where a request's session token came from. */
export type TokenSource = 'bearer' | 'cookie' | 'query';

/**
 * The session token a request carries: `Authorization: Bearer` first (an
 * explicit choice of the caller), then the cookie, then, where `query` is
 * given (the change feed only: EventSource cannot set headers), `?token=`.
 * A present but wrong bearer token does not fall back to the cookie.
 */
export function sessionToken(req: IncomingMessage, query?: URLSearchParams): { token: string; from: TokenSource } | undefined {
  const authorization = req.headers.authorization;
  if (authorization !== undefined) {
    const bearer = /^Bearer +(\S+)$/i.exec(authorization)?.[1];
    return bearer === undefined ? undefined : { token: bearer, from: 'bearer' };
  }
  const cookie = cookieValue(req.headers.cookie, SESSION_COOKIE);
  if (cookie !== undefined) return { token: cookie, from: 'cookie' };
  const param = query?.get('token');
  if (param !== null && param !== undefined && param !== '') return { token: param, from: 'query' };
  return undefined;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const pair of (header ?? '').split(';')) {
    const eq = pair.indexOf('=');
    if (eq !== -1 && pair.slice(0, eq).trim() === name) {
      const value = pair.slice(eq + 1).trim();
      return value === '' ? undefined : value;
    }
  }
  return undefined;
}

/**
 * The cookie set at login. HttpOnly: page script never needs it (it has the
 * token from the answer). SameSite=Lax: a foreign site's form cannot write
 * with it. No Secure: the reference master speaks plain http on loopback,
 * where browsers would drop a Secure cookie.
 */
export function sessionCookie(token: string, ttlMs: number): string {
  return `${SESSION_COOKIE}=${token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${Math.max(1, Math.floor(ttlMs / 1000))}`;
}

/** The cookie that tells a browser to drop the session cookie (logout). */
export const clearedSessionCookie = `${SESSION_COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0`;
