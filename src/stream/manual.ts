import type { LiveEvent, LiveStream } from './types.js';

/** A LiveStream driven by hand: `push` delivers an event to every current listener. For tests and local sources. */
export class ManualLiveStream implements LiveStream {
  private readonly listeners = new Set<{ fn: (e: LiveEvent) => void }>();

  subscribe(listener: (e: LiveEvent) => void): () => void {
    const token = { fn: listener };
    this.listeners.add(token);
    return () => {
      this.listeners.delete(token);
    };
  }

  /** Deliver `e` to every listener subscribed when the push started (and still subscribed when its turn comes). */
  push(e: LiveEvent): void {
    for (const token of [...this.listeners]) {
      if (this.listeners.has(token)) token.fn(e);
    }
  }

  /** How many listeners are subscribed. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
