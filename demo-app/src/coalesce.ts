/**
 * Run `task` `delayMs` after the last `request()`, never two at once: a
 * request while it runs makes it run once more afterwards. Bursts of table
 * events (queued, queue, applied, invalidated) then cost one re-read, not four.
 */
export function coalesce(task: () => Promise<void>, delayMs: number): { request(): void; now(): Promise<void> } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      try {
        do {
          again = false;
          await task().catch((err: unknown) => console.error(err));
        } while (again);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  return {
    request() {
      clearTimeout(timer);
      timer = setTimeout(() => void run(), delayMs);
    },
    now() {
      clearTimeout(timer);
      return run();
    },
  };
}
