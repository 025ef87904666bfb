import type { IncomingMessage } from 'node:http';
import { HttpError } from '../errors.js';
import { OPEN } from '../storage/types.js';
import type { Owner } from '../storage/types.js';
import { sessionToken } from './credentials.js';
import type { Session, SessionStore } from './sessions.js';
import { passwordMatches } from './users.js';
import type { Users } from './users.js';

/** Who is asking: whose rows a request reads and writes, and whether its session still holds. */
export interface Caller {
  owner: Owner;
  /** False once the session expired or logged out; a feed asks before each heartbeat. */
  sessionAlive(): Promise<boolean>;
}

/** The caller of a master without --auth: everything is open and unowned. */
export const OPEN_CALLER: Caller = { owner: OPEN, sessionAlive: async () => true };

/** 401 `auth_required`: a client pauses its tables until the user signs in. */
export const authRequired = (message: string): HttpError =>
  new HttpError(401, 'auth_required', message, { 'WWW-Authenticate': 'Bearer realm="vantage-live"' });

/** Users, their sessions, and the check every `/api` request passes in auth mode. */
export class Auth {
  constructor(
    readonly users: Users,
    readonly sessions: SessionStore,
    readonly ttlMs: number,
  ) {}

  /** A new session, or 401 `bad_credentials` (the same for an unknown user and a wrong password). */
  async login(user: string, password: string): Promise<Session> {
    if (!passwordMatches(this.users, user, password)) throw new HttpError(401, 'bad_credentials', 'wrong user name or password');
    return this.sessions.start(user);
  }

  /** The request's live session, or undefined. `query` is given for the change feed only (`?token=`). */
  async session(req: IncomingMessage, query?: URLSearchParams): Promise<Session | undefined> {
    const found = sessionToken(req, query);
    if (found === undefined) return undefined;
    const session = await this.sessions.find(found.token);
    // A user removed from the users list since login is signed out.
    return session !== undefined && Object.hasOwn(this.users, session.user) ? session : undefined;
  }

  /** The caller of an `/api` request; 401 `auth_required` without a live session. */
  async authenticate(req: IncomingMessage, query?: URLSearchParams): Promise<Caller> {
    const found = sessionToken(req, query);
    if (found === undefined) {
      throw authRequired('sign in first: POST /auth/login, then send the session cookie or Authorization: Bearer <token>');
    }
    const session = await this.session(req, query);
    if (session === undefined) throw authRequired('the session has expired or ended: sign in again at POST /auth/login');
    return { owner: session.user, sessionAlive: async () => (await this.sessions.find(session.token)) !== undefined };
  }
}

/** Everyone who owns rows: each user in auth mode, the open owner without it. */
export function owners(auth: Auth | undefined): Owner[] {
  return auth === undefined ? [OPEN] : Object.keys(auth.users);
}
