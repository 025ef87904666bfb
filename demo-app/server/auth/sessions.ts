import { createHash, randomBytes } from 'node:crypto';
import type { SessionRows } from '../storage/types.js';

/** A signed-in user's session, as the master hands it out. */
export interface Session {
  user: string;
  /** The bearer token, also the cookie's value. Only its hash is stored. */
  token: string;
  /** Milliseconds since the epoch (the master's clock); the session ends then. */
  expiresAt: number;
}

export interface SessionStoreOptions {
  ttlMs: number;
  now: () => number;
  /** Live sessions kept per user; a login past it ends that user's oldest. */
  maxPerUser: number;
}

// A token is a bearer secret; a copy of the database must not hold usable ones.
const hash = (token: string): string => createHash('sha256').update(token).digest('base64url');

/**
 * Sessions in the master's storage, beside the rows they guard. Kept there
 * rather than in memory so a restart of the master (which its tests and the
 * chaos rig do often) does not sign every client out: an offline-first
 * client would pause every table until its user signs in again. With several
 * masters on one Postgres database, a session from one is good on all. A
 * session lasts `ttlMs` from login, whatever happens meanwhile (no sliding
 * renewal).
 */
export class SessionStore {
  constructor(
    private readonly rows: SessionRows,
    private readonly opts: SessionStoreOptions,
  ) {}

  /** A new session for `user` (whose password was checked). */
  async start(user: string): Promise<Session> {
    const now = this.opts.now();
    const session: Session = { user, token: randomBytes(32).toString('base64url'), expiresAt: now + this.opts.ttlMs };
    await this.rows.insert(hash(session.token), user, session.expiresAt, now, this.opts.maxPerUser);
    return session;
  }

  /** The live session of this token; undefined when it is unknown, ended or expired. */
  async find(token: string): Promise<Session | undefined> {
    const found = await this.rows.find(hash(token), this.opts.now());
    return found === undefined ? undefined : { ...found, token };
  }

  async end(token: string): Promise<void> {
    await this.rows.remove(hash(token));
  }
}
