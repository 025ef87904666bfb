import { logger } from './log.js';

const log = logger('vantage-live:listeners');

/**
 * A set of listeners that all hear every value: those subscribed when an emit
 * starts and still subscribed when their turn comes (a listener may
 * unsubscribe itself or others), and a listener that throws or rejects is
 * logged and never stops the others or the code that emitted.
 */
export class Listeners<T> {
  // A token per subscription, so the same function subscribed twice is two subscriptions.
  private readonly set = new Set<{ fn: (value: T) => unknown }>();

  /** @param label what these listeners hear, for the log */
  constructor(private readonly label: string) {}

  /** Returns the function that removes `listener`. */
  add(listener: (value: T) => unknown): () => void {
    const token = { fn: listener };
    this.set.add(token);
    return () => void this.set.delete(token);
  }

  get size(): number {
    return this.set.size;
  }

  clear(): void {
    this.set.clear();
  }

  /** Call every listener; resolves once those that returned a promise have settled. Never rejects. */
  emit(value: T): Promise<void> {
    const waits: Array<Promise<unknown>> = [];
    for (const token of [...this.set]) {
      if (!this.set.has(token)) continue;
      try {
        const returned = token.fn(value);
        if (returned instanceof Promise) waits.push(returned.catch((err) => this.failed(err)));
      } catch (err) {
        this.failed(err);
      }
    }
    return Promise.all(waits).then(() => {});
  }

  private failed(err: unknown): void {
    log.error(`a ${this.label} listener failed`, { error: String(err) });
  }
}
