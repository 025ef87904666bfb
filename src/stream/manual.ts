import { Listeners } from '../listeners.js';
import type { LiveEvent, LiveStream } from './types.js';

/** A LiveStream driven by hand: `push` delivers an event to every current listener. For tests and local sources. */
export class ManualLiveStream implements LiveStream {
  private readonly listeners = new Listeners<LiveEvent>('live event');

  subscribe(listener: (e: LiveEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  /** Deliver `e` to every listener subscribed when the push started (and still subscribed when its turn comes). */
  push(e: LiveEvent): void {
    void this.listeners.emit(e);
  }

  /** How many listeners are subscribed. */
  get listenerCount(): number {
    return this.listeners.size;
  }
}
