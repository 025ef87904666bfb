/**
 * Who the worker's data belongs to. Every user gets a cache and a queue of
 * their own (separate IndexedDB databases), made by the app's table factory
 * when they sign in; signed out, there are no tables at all, so nothing is
 * read from or sent for anyone. A user's queued writes are only ever sent by
 * that user's tables, under that user's credentials.
 */
import { deleteDB } from 'idb';
import { IdbCache } from '../cache/idb-cache.js';
import { AuthRequiredError, InvalidInputError, VantageError } from '../errors.js';
import type { LiveTable } from '../live-table.js';
import { IdbQueue } from '../queue/idb-queue.js';

/** What the app's table factory gets for the signed-in user. */
export interface UserScope {
  readonly user: string;
  /** This user's cache: the database `vantage-live-cache:<user>`. */
  readonly cache: IdbCache;
  /** This user's queue: the database `vantage-live-queue:<user>`. */
  readonly queue: IdbQueue;
  /**
   * Headers for RestTable's `headers` option in a bearer-token app: the token
   * the pages handed over (`setCredentials`). Throws AuthRequiredError while
   * the worker has none (after a restart), so nothing goes out unauthenticated.
   */
  bearer(): Record<string, string>;
}

/** The tables of one user, made when they sign in. */
export type TablesFor = (scope: UserScope) => Record<string, LiveTable>;

/** What happens to the user's pending writes on sign-out. */
export interface SignOutOptions {
  /** `flush`: send them first (fails with `pending_writes` if some cannot go now); `keep`: sealed until this user signs in again; `discard`: dropped. */
  pending: 'flush' | 'keep' | 'discard';
  /** Delete the user's databases (cache, queue, resume points); needs `pending` to be `flush` or `discard`. */
  wipe?: boolean;
}

export class Sessions {
  private user: string | undefined;
  private tables: Record<string, LiveTable> | undefined;
  private scope: (UserScope & { token?: string; refused?: string }) | undefined;

  constructor(
    private readonly tablesFor: TablesFor,
    /** Called with each new set of tables, to wire their events. */
    private readonly onTables: (tables: Record<string, LiveTable>) => void,
    /** Byte budget of each user's cache; default IdbCache's. */
    private readonly cacheBudgetBytes?: number,
  ) {}

  get signedIn(): string | undefined {
    return this.user;
  }

  /** The signed-in user's tables, or undefined when no one is signed in. */
  current(): Record<string, LiveTable> | undefined {
    return this.tables;
  }

  /** Sign `user` in (a user already signed in is signed out first, keeping their writes), with a bearer token if the app uses one. */
  async signIn(user: string, token?: string): Promise<void> {
    if (typeof user !== 'string' || !user || user.includes('/')) throw new InvalidInputError(`Invalid user ${JSON.stringify(user)}: a non-empty name without "/"`);
    if (this.user !== user) {
      if (this.user !== undefined) await this.signOut({ pending: 'keep' });
      let token: string | undefined;
      const scope = {
        user,
        cache: new IdbCache(`vantage-live-cache:${user}`, { budgetBytes: this.cacheBudgetBytes }),
        queue: new IdbQueue(`vantage-live-queue:${user}`),
        bearer: () => {
          if (token === undefined) throw new AuthRequiredError(`No credentials for ${user} in the service worker yet: a page must call setCredentials`);
          return { authorization: `Bearer ${token}` };
        },
        get token() {
          return token;
        },
        set token(value: string | undefined) {
          token = value;
        },
      } as UserScope & { token?: string };
      this.scope = scope;
      this.tables = this.tablesFor(scope);
      this.user = user;
      this.onTables(this.tables);
    }
    await this.setCredentials(token);
  }

  /** New credentials for the signed-in user (undefined: a cookie session was renewed): writes paused for them go again. */
  async setCredentials(token: string | undefined): Promise<void> {
    if (!this.scope || !this.tables) throw new VantageError('signed_out', 'No one is signed in: call signIn(user) first');
    if (token !== undefined) {
      if (token === this.scope.refused) return; // the token the master just refused: sending again would only loop
      this.scope.token = token;
    }
    await Promise.all(Object.values(this.tables).map((t) => t.credentialsChanged()));
  }

  /** The master refused the current token: remember it, so handing the same one over again does not loop. */
  refused(): void {
    if (this.scope) this.scope.refused = this.scope.token;
  }

  async signOut(opts: SignOutOptions): Promise<void> {
    if (!['flush', 'keep', 'discard'].includes(opts?.pending)) throw new InvalidInputError('signOut needs pending: "flush", "keep" or "discard"');
    if (opts.wipe && opts.pending === 'keep') throw new InvalidInputError('A wipe deletes the pending writes: sign out with pending "flush" or "discard" to wipe');
    const { tables, scope } = this;
    if (!tables || !scope) return;
    const all = Object.values(tables);
    if (opts.pending === 'flush') {
      await Promise.all(all.map((t) => t.flush()));
      const left = (await Promise.all(all.map((t) => t.queue.counts(t.name)))).reduce((n, c) => n + c.pending + c.dead, 0);
      if (left > 0) throw new VantageError('pending_writes', `${left} write(s) could not be sent now: sign out with pending "keep" (sealed until this user signs in again) or "discard"`);
    }
    all.forEach((t) => t.close());
    // Let a flush under way and background refetches end: afterwards nothing of this user's touches their databases.
    await Promise.all(all.map((t) => Promise.all([t.flush(), t.idle()])));
    if (opts.pending === 'discard') {
      for (const t of all) for (const op of await t.queue.ops(t.name)) if (op.status !== 'in-flight') await t.queue.discard(op.opId, Date.now());
    }
    this.tables = undefined;
    this.scope = undefined;
    this.user = undefined;
    if (opts.wipe) {
      for (const db of [scope.cache, scope.queue]) {
        await db.close();
        await deleteDB(db.dbName);
      }
    }
  }
}
