import type { Auth } from './auth/auth.js';
import type { Chaos } from './chaos.js';
import type { FeedHub } from './feed.js';
import type { Audience } from './origin.js';
import type { Storage } from './storage/types.js';

/** Counters behind `GET /admin/stats`; they live as long as the process. */
export interface Stats {
  writes: number;
  replays: number;
}

/** What every route handler of one running master shares. */
export interface Master {
  storage: Storage;
  hub: FeedHub;
  chaos: Chaos;
  stats: Stats;
  chaosEnabled: boolean;
  staticDir: string | undefined;
  maxBodyBytes: number;
  /** Whether `POST /api/:table/_batch` is served and advertised. */
  batches: boolean;
  heartbeatMs: number;
  audience: Audience;
  adminToken: string;
  /** Content-Security-Policy of static files. */
  pageCsp: string;
  /** Users and sessions in auth mode (`--auth`); undefined when the master is open. */
  auth: Auth | undefined;
  /** The master's clock (sessions, idempotency retention); injectable for tests. */
  now(): number;
  /** True once close() began: handlers resuming after an await must not touch the storage. */
  isClosed(): boolean;
}
