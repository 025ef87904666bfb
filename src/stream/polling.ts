import { defaultEnv, type Env } from '../env.js';
import { Listeners } from '../listeners.js';
import type { LiveEvent, LiveStream, StreamState } from './types.js';

export interface PollingOptions {
  /** How often to look, in ms. */
  intervalMs: number;
  /**
   * What to look at, e.g. `() => table.page({ page: 1, ipp: 50 })`: when its
   * JSON differs from the last look, the table changed. Without a probe every
   * look is a change (reads are then at most `intervalMs` old, like `maxAgeMs`,
   * but the UI hears about it).
   */
  probe?: () => Promise<unknown>;
  /** Timers; default the platform's. */
  env?: Env;
}

/**
 * A change feed for a backend that has none: it looks every `intervalMs`
 * while anyone listens and tells `changed` when what it saw differs. The first
 * look after subscribing, and the first after a failed one, is a `changed`
 * too: whatever happened while nobody looked is unknown. A change the probe
 * does not see (a row past its page) is heard only through `maxAgeMs`.
 *
 * Timers stop with their worker: in a service worker, host it on the page
 * (`hostLiveStream`) so polling runs while the app is open.
 */
export class PollingLiveStream implements LiveStream {
  private readonly events = new Listeners<LiveEvent>('live event');
  private readonly states = new Listeners<StreamState>('stream state');
  private readonly env: Env;
  private cancel: (() => void) | undefined;
  private seen: string | undefined;
  private state: StreamState = 'closed';
  // Bumped when the last listener leaves, so a look still running then schedules no other.
  private generation = 0;
  private looks = 0;

  constructor(private readonly opts: PollingOptions) {
    this.env = opts.env ?? defaultEnv;
  }

  subscribe(listener: (e: LiveEvent) => void): () => void {
    const remove = this.events.add(listener);
    if (this.events.size === 1) this.schedule(0);
    return () => {
      remove();
      if (this.events.size > 0) return;
      this.generation++;
      this.cancel?.();
      this.cancel = undefined;
      this.seen = undefined;
      this.setState('closed');
    };
  }

  onState(listener: (state: StreamState) => void): () => void {
    return this.states.add(listener);
  }

  /** One look now; a change is told to every listener. Resolves when the look is done. */
  async poll(): Promise<void> {
    let now: string;
    try {
      now = this.opts.probe ? JSON.stringify(await this.opts.probe()) : String(++this.looks);
    } catch {
      this.seen = undefined; // unreachable: whatever happens meanwhile is unknown
      this.setState('connecting');
      return;
    }
    const changed = now !== this.seen;
    this.seen = now;
    this.setState('open');
    if (changed) await this.events.emit({ kind: 'changed' });
  }

  private schedule(ms: number): void {
    const generation = this.generation;
    this.cancel = this.env.setTimer(() => {
      this.cancel = undefined;
      void this.poll().finally(() => {
        if (generation === this.generation) this.schedule(this.opts.intervalMs);
      });
    }, ms);
  }

  private setState(state: StreamState): void {
    if (state === this.state) return;
    this.state = state;
    void this.states.emit(state);
  }
}
