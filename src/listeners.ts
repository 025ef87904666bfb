import { logger } from './log.js';

const log = logger('vantage-live:listeners');

/**
 * A set of listeners that all hear every value: the set is copied before
 * calling (a listener may unsubscribe itself), and a listener that throws or
 * rejects is logged and never stops the others or the code that emitted.
 */
export class Listeners<T> {
  private readonly set = new Set<(value: T) => unknown>();

  /** @param label what these listeners hear, for the log */
  constructor(private readonly label: string) {}

  /** Returns the function that removes `listener`. */
  add(listener: (value: T) => unknown): () => void {
    this.set.add(listener);
    return () => void this.set.delete(listener);
  }

  get size(): number {
    return this.set.size;
  }

  /** Call every listener; resolves once those that returned a promise have settled. Never rejects. */
  emit(value: T): Promise<void> {
    const waits: Array<Promise<unknown>> = [];
    for (const listener of [...this.set]) {
      try {
        const returned = listener(value);
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
