import type { LiveTableClient } from '../../src/page.js';
import { mountCacheView } from './cache-view.js';
import { coalesce } from './coalesce.js';
import { rememberedDetails } from './dom.js';
import { mountEventLog } from './event-log.js';
import { mountQueueView } from './queue-view.js';
import { mountWorkerView } from './worker-view.js';

/** Ages and retry countdowns move on their own; redraw them this often while the inspector is open. */
const TICK_MS = 1_000;

/** A collapsible look inside the library: the write queue, the cache, the worker, and every event (`eventLog`, if it started listening earlier). */
export function mountInspector(live: LiveTableClient, eventLog = mountEventLog(live)): HTMLDetailsElement {
  const queue = mountQueueView(live);
  const cache = mountCacheView(live);
  const worker = mountWorkerView(() => window.vantageInfo());
  const panel = rememberedDetails('inspector', { class: 'panel inspector', testid: 'inspector' }, 'Inspector', queue.el, cache.el, worker.el, eventLog);
  panel.addEventListener('toggle', () => panel.open && worker.refresh());
  // The worker records a feed event's id only after it has taken the event in: ask a moment later.
  const workerAfterEvents = coalesce(async () => worker.refresh(), 500);
  live.subscribe((e) => e.type === 'live' && workerAfterEvents.request());
  setInterval(() => {
    if (!panel.open || document.hidden) return;
    queue.tick();
    cache.tick();
  }, TICK_MS);
  return panel;
}
