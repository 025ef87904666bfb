/**
 * The wire format between a page and the service worker that hosts its
 * LiveTables. Nothing but types, constants and the error codec live here.
 *
 * Each call is one message to the worker with its own reply port (never a
 * long-lived port, which dies silently when the worker is stopped). The
 * worker answers on that port: `ack` at once, `alive` while it works, then
 * `reply`. A page that hears nothing for `LIVENESS_MS` presumes the worker
 * was stopped and sends the same call again, which starts it anew.
 */
import { transferHandlers } from 'comlink';
import * as errors from '../errors.js';
import type { LiveTableEvent } from '../live-table.js';
import type { LiveEvent, StreamState } from '../stream/types.js';

/** Bump on any change to the messages below; page and worker refuse to talk across versions (B3). */
export const PROTOCOL_VERSION = 3;

/** How often a busy worker says it is still working on a call, in ms. */
export const ALIVE_EVERY_MS = 1_000;
/** Silence after which the page presumes the worker was stopped and sends the call again, in ms. */
export const LIVENESS_MS = 4_000;

/** The BroadcastChannel every tab listens on for table events (B2). */
export const EVENTS_CHANNEL = 'vantage-live:events';

/**
 * A page-to-worker message: a Comlink message for one table, or a control
 * request. `patienceMs` is how long the page will listen for the answer: the
 * worker stops saying `alive` and holding itself awake for the call after that.
 */
export type Envelope = { vantageLive: number; patienceMs?: number } & (
  | { kind: 'call'; table: string; message: unknown }
  | { kind: 'online' }
  | { kind: 'nudge' }
  | { kind: 'stream-resume'; table: string }
  | { kind: 'live-event'; table: string; event: LiveEvent }
  | { kind: 'stream-state'; table: string; state: StreamState }
  | { kind: 'info' }
);

/** A worker-to-page message on a call's reply port. */
export type PortMessage =
  | { kind: 'ack' }
  | { kind: 'alive' }
  | { kind: 'reply'; value: unknown }
  | { kind: 'failed'; error: WireError }
  | { kind: 'mismatch'; workerVersion: number };

/** A message on the events channel. */
export interface Broadcast {
  table: string;
  event: LiveTableEvent;
}

/** What `info` answers: the worker's build and its tables. */
export interface WorkerInfo {
  protocol: number;
  version: string;
  tables: Array<{ name: string; cacheKey: string; masterIpp: number; cache: string; queue: string; pending: number; dead: number; lastEventId?: string; stream: StreamState }>;
}

export function isEnvelope(data: unknown): data is Envelope {
  return typeof data === 'object' && data !== null && typeof (data as { vantageLive?: unknown }).vantageLive === 'number';
}

// ---- errors across the wire ----

export interface WireError {
  name: string;
  message: string;
  fields: Record<string, unknown>;
}

const errorClasses: Record<string, { prototype: Error }> = {
  VantageError: errors.VantageError,
  MasterRejectedError: errors.MasterRejectedError,
  MasterUnavailableError: errors.MasterUnavailableError,
  OfflineMissError: errors.OfflineMissError,
  InvalidInputError: errors.InvalidInputError,
  StorageFullError: errors.StorageFullError,
  UnknownOpError: errors.UnknownOpError,
  BridgeTimeoutError: errors.BridgeTimeoutError,
  ProtocolMismatchError: errors.ProtocolMismatchError,
  NoServiceWorkerError: errors.NoServiceWorkerError,
  DeadLetterError: errors.DeadLetterError,
  UnexpectedResponseError: errors.UnexpectedResponseError,
};

export function toWireError(err: unknown): WireError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err), fields: {} };
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(err)) if (isPlain(value)) fields[key] = value;
  return { name: err.name, message: err.message, fields };
}

/** Rebuild an error as the class it was thrown as, so `instanceof` and `code` work on the page. */
export function fromWireError(wire: WireError): Error {
  const err = new Error(wire.message);
  const cls = errorClasses[wire.name];
  if (cls) Object.setPrototypeOf(err, cls.prototype);
  return Object.assign(err, wire.fields, { name: wire.name });
}

function isPlain(value: unknown): boolean {
  return value === null || ['string', 'number', 'boolean'].includes(typeof value);
}

// Comlink's own codec keeps only name, message and stack; this one keeps the class and its fields.
transferHandlers.set('throw', {
  canHandle: (value: unknown): value is { value: unknown } =>
    typeof value === 'object' && value !== null && Object.getOwnPropertySymbols(value).some((s) => s.description === 'Comlink.thrown'),
  serialize: ({ value }: { value: unknown }) => [toWireError(value), []],
  deserialize: (wire: unknown) => {
    throw fromWireError(wire as WireError);
  },
});
