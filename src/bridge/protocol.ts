/**
 * The wire format between a page and the service worker that hosts its
 * LiveTables. Nothing but types, constants, the message check and the error
 * codec live here.
 *
 * Each call is one message to the worker with its own reply port (never a
 * long-lived port, which dies silently when the worker is stopped). The
 * worker answers on that port: `ack` at once, `alive` while it works, then
 * `reply`. A page that hears nothing for `LIVENESS_MS` presumes the worker
 * was stopped and sends the same call again, which starts it anew.
 *
 * A call names one method from TABLE_METHODS and its arguments, which are
 * plain data. This replaces a Comlink proxy on purpose: Comlink gives any
 * script of the origin property reads and writes, construction and paths into
 * the worker's objects; this wire gives exactly the methods below.
 */
import * as errors from '../errors.js';
import type { LiveTableEvent } from '../live-table.js';
import type { OfflineStatus } from '../prefetch.js';
import type { LiveEvent, StreamState } from '../stream/types.js';

/** Bump on any change to the messages below; page and worker refuse to talk across versions (B3). */
export const PROTOCOL_VERSION = 6;

/** How often a busy worker says it is still working on a call, in ms. */
export const ALIVE_EVERY_MS = 1_000;
/** Silence after which the page presumes the worker was stopped and sends the call again, in ms. */
export const LIVENESS_MS = 4_000;

/** The BroadcastChannel every tab listens on for table events (B2). */
export const EVENTS_CHANNEL = 'vantage-live:events';

/** The LiveTable methods a page may call, and nothing else: no master, queue or cache, no `close` or `ingest`. */
export const TABLE_METHODS = [
  'read',
  'readOne',
  'list',
  'get',
  'insert',
  'insertReturnId',
  'replace',
  'patch',
  'delete',
  'deleteAll',
  'flush',
  'waitFor',
  'pending',
  'deadLetters',
  'retry',
  'discard',
  'resolve',
  'invalidate',
  'cacheEntries',
  'startPrefetch',
  'cancelPrefetch',
  'pin',
  'unpin',
  'offlineStatus',
] as const;
export type TableMethod = (typeof TABLE_METHODS)[number];

/**
 * A page-to-worker message: a call of one table method, or a control request.
 * `patienceMs` is how long the page will listen for the answer: the worker
 * stops saying `alive` and holding itself awake for the call after that.
 * `log` is the page's log filter, which the worker takes on.
 */
export type Envelope = { vantageLive: number; patienceMs?: number; log?: string } & (
  | { kind: 'call'; table: string; method: TableMethod; args: unknown[] }
  | { kind: 'online' }
  | { kind: 'nudge' }
  | { kind: 'stream-resume'; table: string }
  /** `events`: a burst, in order, `event` its last (a worker that knows only `event` still invalidates and resumes from it). */
  | { kind: 'live-event'; table: string; event: LiveEvent; events?: LiveEvent[] }
  | { kind: 'stream-state'; table: string; state: StreamState }
  | { kind: 'info' }
  | { kind: 'sign-in'; user: string; token?: string }
  | { kind: 'sign-out'; pending: 'flush' | 'keep' | 'discard'; wipe?: boolean }
  | { kind: 'credentials'; token?: string }
  | { kind: 'read-plan'; table: string }
);

/** A worker-to-page message on a call's reply port. */
export type PortMessage =
  | { kind: 'ack' }
  | { kind: 'alive' }
  | { kind: 'reply'; value: unknown }
  | { kind: 'failed'; error: WireError }
  | { kind: 'mismatch'; workerVersion: number };

/** A table's event on the events channel. */
export interface Broadcast {
  table: string;
  event: LiveTableEvent;
}

/** Someone else is signed in now (`user` undefined: no one), on the events channel: what a tab keeps of the last user's reads is forgotten. */
export interface SessionBroadcast {
  session: { user?: string };
}

/** Every message on the events channel. */
export type ChannelMessage = Broadcast | SessionBroadcast;

/** The version of the worker's meta database ("vantage-live-meta"): who is signed in, resume points. */
export const META_SCHEMA_VERSION = 2;

/**
 * What `read-plan` answers: what a page needs to answer reads of one table
 * itself (README, "Reads in the page"), or null when it cannot (a cache or
 * queue outside IndexedDB).
 */
export interface PageReadPlan {
  cacheKey: string;
  masterIpp: number;
  /** An entry older than this is stale, in ms. */
  maxAgeMs?: number;
  /** The cache's database, and the queue's, whose running counts say whether writes are pending on `queueTable`. */
  cacheDb: string;
  queueDb: string;
  queueTable: string;
  /** For tables per user: whom the databases belong to, and where the worker keeps who is signed in. */
  session?: { user: string; metaDb: string };
}

/** What `info` answers: the worker's build and its tables. */
export interface WorkerInfo {
  protocol: number;
  version: string;
  /** Who is signed in, for a worker that serves tables per user (undefined: no one, or tables for everyone). */
  user?: string;
  tables: Array<{
    name: string;
    cacheKey: string;
    masterIpp: number;
    cache: string;
    queue: string;
    pending: number;
    dead: number;
    lastEventId?: string;
    stream: StreamState;
    authRequired: boolean;
    /** The adapter's delivery guarantee, in one line (README, "Your own backend"). */
    delivery?: string;
    /** Cache size and budget, pinned ranges and their freshness, the last background refresh. */
    offline?: OfflineStatus;
  }>;
  /** The origin's storage as the browser reports it (`navigator.storage`), where it can. */
  storage?: { usage?: number; quota?: number; persisted?: boolean };
}

/** Anything tagged as ours, whatever its version (so a mismatch can be answered). */
export function isTagged(data: unknown): data is { vantageLive: number } {
  return typeof data === 'object' && data !== null && typeof (data as { vantageLive?: unknown }).vantageLive === 'number';
}

const isLiveEvent = (e: unknown) => typeof e === 'object' && e !== null && typeof (e as { kind?: unknown }).kind === 'string';

const KINDS = new Set(['call', 'online', 'nudge', 'stream-resume', 'live-event', 'stream-state', 'info', 'sign-in', 'sign-out', 'credentials', 'read-plan']);
const METHODS: ReadonlySet<string> = new Set(TABLE_METHODS);
const STATES = new Set(['connecting', 'open', 'closed', 'auth-required']);

/** Whether a tagged message of this version is one the protocol knows, field by field. Anything else is refused. */
export function isEnvelope(data: { vantageLive: number }): data is Envelope {
  const m = data as Record<string, unknown>;
  if (typeof m.kind !== 'string' || !KINDS.has(m.kind)) return false;
  if (m.patienceMs !== undefined && typeof m.patienceMs !== 'number') return false;
  if (m.log !== undefined && typeof m.log !== 'string') return false;
  const hasTable = typeof m.table === 'string';
  switch (m.kind) {
    case 'call':
      return hasTable && typeof m.method === 'string' && METHODS.has(m.method) && Array.isArray(m.args);
    case 'stream-resume':
    case 'read-plan':
      return hasTable;
    case 'live-event':
      return hasTable && isLiveEvent(m.event) && (m.events === undefined || (Array.isArray(m.events) && m.events.length > 0 && m.events.every(isLiveEvent)));
    case 'stream-state':
      return hasTable && STATES.has(m.state as string);
    case 'sign-in':
      return typeof m.user === 'string' && (m.token === undefined || typeof m.token === 'string');
    case 'sign-out':
      return typeof m.pending === 'string' && (m.wipe === undefined || typeof m.wipe === 'boolean');
    case 'credentials':
      return m.token === undefined || typeof m.token === 'string';
    default:
      return true;
  }
}

// ---- errors across the wire ----

export interface WireError {
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

// By code, not by constructor name: a minified build renames classes.
const classByCode: Partial<Record<errors.VantageErrorCode, { prototype: Error }>> = {
  master_rejected: errors.MasterRejectedError,
  master_unavailable: errors.MasterUnavailableError,
  unexpected_response: errors.UnexpectedResponseError,
  offline_miss: errors.OfflineMissError,
  invalid_input: errors.InvalidInputError,
  storage_full: errors.StorageFullError,
  unknown_op: errors.UnknownOpError,
  dead_letter: errors.DeadLetterError,
  bridge_timeout: errors.BridgeTimeoutError,
  protocol_mismatch: errors.ProtocolMismatchError,
  no_service_worker: errors.NoServiceWorkerError,
  auth_required: errors.AuthRequiredError,
  conflict: errors.ConflictError,
};

export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  // A conflict's `theirs` is a row (plain JSON): the page needs it to show both versions.
  for (const [key, value] of Object.entries(err)) if (isPlain(value) || (key === 'theirs' && err instanceof errors.ConflictError)) fields[key] = value;
  return { name: err.name, message: err.message, fields };
}

/** Rebuild an error as the class it was thrown as (found by its `code`), so `instanceof` and `code` work on the page. */
export function fromWireError(wire: WireError): Error {
  const err = new Error(wire.message);
  const code = wire.fields.code as errors.VantageErrorCode;
  if ((errors.VANTAGE_ERROR_CODES as readonly unknown[]).includes(code)) Object.setPrototypeOf(err, (classByCode[code] ?? errors.VantageError).prototype);
  return Object.assign(err, wire.fields, { name: wire.name });
}

function isPlain(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}
