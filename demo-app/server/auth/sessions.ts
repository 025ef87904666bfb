import { createHash, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';

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

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  );
  CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
  CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (user, expires_at);
`;

// A token is a bearer secret; a copy of the database file must not hold usable ones.
const hash = (token: string): string => createHash('sha256').update(token).digest('base64url');

/**
 * Sessions in the master's SQLite file, beside the rows they guard. Kept
 * there rather than in memory so a restart of the master (which its tests and
 * the chaos rig do often) does not sign every client out: an offline-first
 * client would pause every table until its user signs in again. A session
 * lasts `ttlMs` from login, whatever happens meanwhile (no sliding renewal).
 */
export class SessionStore {
  private readonly stmt;

  constructor(
    db: Database.Database,
    private readonly opts: SessionStoreOptions,
  ) {
    db.exec(SCHEMA);
    this.stmt = {
      insert: db.prepare<[string, string, number]>('INSERT INTO sessions (token_hash, user, expires_at) VALUES (?, ?, ?)'),
      find: db.prepare<[string, number], { user: string; expiresAt: number }>(
        'SELECT user, expires_at AS expiresAt FROM sessions WHERE token_hash = ? AND expires_at > ?',
      ),
      remove: db.prepare<[string]>('DELETE FROM sessions WHERE token_hash = ?'),
      purge: db.prepare<[number]>('DELETE FROM sessions WHERE expires_at <= ?'),
      trimUser: db.prepare<[string, number]>(
        `DELETE FROM sessions WHERE token_hash IN
           (SELECT token_hash FROM sessions WHERE user = ? ORDER BY expires_at DESC LIMIT -1 OFFSET ?)`,
      ),
    };
  }

  /** A new session for `user` (whose password was checked). */
  start(user: string): Session {
    const now = this.opts.now();
    const session: Session = { user, token: randomBytes(32).toString('base64url'), expiresAt: now + this.opts.ttlMs };
    this.stmt.purge.run(now);
    this.stmt.insert.run(hash(session.token), user, session.expiresAt);
    this.stmt.trimUser.run(user, this.opts.maxPerUser);
    return session;
  }

  /** The live session of this token; undefined when it is unknown, ended or expired. */
  find(token: string): Session | undefined {
    const found = this.stmt.find.get(hash(token), this.opts.now());
    return found === undefined ? undefined : { ...found, token };
  }

  end(token: string): void {
    this.stmt.remove.run(hash(token));
  }
}
