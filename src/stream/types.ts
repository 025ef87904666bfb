import type { Id } from '../types.js';

/** A change made elsewhere, as told by the master's change feed. */
export type LiveEvent =
  | { kind: 'changed'; eventId?: string }
  | { kind: 'inserted' | 'updated' | 'deleted'; id: Id; eventId?: string }
  /** The source lost track of what changed: drop everything. */
  | { kind: 'reset'; eventId?: string };

/** `auth-required`: the master refused the stream's credentials; it waits for `reconnect()` (new credentials). */
export type StreamState = 'connecting' | 'open' | 'closed' | 'auth-required';

/** A source of LiveEvents. Returns an unsubscribe function. */
export interface LiveStream {
  subscribe(listener: (e: LiveEvent) => void): () => void;
  /** Streams with a connection report its state; returns an unsubscribe function. */
  onState?(listener: (state: StreamState) => void): () => void;
  /** Connect again now (new credentials); streams with a connection have it. */
  reconnect?(): void;
}
