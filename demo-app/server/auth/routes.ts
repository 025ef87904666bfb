import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Master } from '../context.js';
import { HttpError, methodNotAllowed, notFound } from '../errors.js';
import { parseJsonObject, readBody, sendJson } from '../http.js';
import { authRequired } from './auth.js';
import { clearedSessionCookie, sessionCookie, sessionToken } from './credentials.js';

// A user name and a password; anything larger is not a login.
const MAX_LOGIN_BYTES = 4096;

const ROUTES: Record<string, string> = { login: 'POST', logout: 'POST', me: 'GET' };

/** Handles `/auth/...` (`path` is what follows `auth`): login, logout and who am I. */
export async function handleAuth(req: IncomingMessage, res: ServerResponse, ctx: Master, path: string[]): Promise<void> {
  const route = path.join('/');
  const allowed = ROUTES[route];
  if (allowed === undefined) throw notFound();
  const auth = ctx.auth;
  if (auth === undefined) throw new HttpError(404, 'auth_disabled', 'this master runs without --auth: every request is allowed without signing in');
  const method = req.method ?? 'GET';
  if (method === 'OPTIONS') return sendJson(res, 204, null, { Allow: `${allowed}, OPTIONS` });
  if (method !== allowed) throw methodNotAllowed(method, [allowed, 'OPTIONS']);

  if (route === 'login') {
    const body = parseJsonObject(await readBody(req, MAX_LOGIN_BYTES));
    const { user, password } = body;
    if (typeof user !== 'string' || typeof password !== 'string') {
      throw new HttpError(400, 'invalid_body', 'send {"user": "...", "password": "..."}');
    }
    if (ctx.isClosed()) return void req.socket.destroy();
    const session = await auth.login(user, password);
    sendJson(res, 200, { user: session.user, token: session.token, expiresAt: session.expiresAt }, {
      'Set-Cookie': sessionCookie(session.token, session.expiresAt - ctx.now()),
    });
    return;
  }
  if (route === 'logout') {
    const found = sessionToken(req);
    if (found !== undefined) await auth.sessions.end(found.token);
    sendJson(res, 204, null, { 'Set-Cookie': clearedSessionCookie });
    return;
  }
  const session = await auth.session(req);
  if (session === undefined) throw authRequired('not signed in, or the session has expired');
  sendJson(res, 200, { user: session.user, expiresAt: session.expiresAt });
}
