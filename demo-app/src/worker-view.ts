import type { WorkerInfo } from '../../src/page.js';
import { h, replaceChildren } from './dom.js';

/** The service worker's build and wiring (`window.vantageInfo()`): which cache and queue back this page, and the feed's resume point. */
export function mountWorkerView(info: () => Promise<WorkerInfo>): { el: HTMLElement; refresh(): void } {
  const line = h('p', { class: 'worker-info', testid: 'inspector-worker' }, '…');
  const refresh = () =>
    void info().then(
      (i) => {
        const t = i.tables.find((table) => table.name === 'products');
        replaceChildren(
          line,
          `worker ${i.version} · protocol ${i.protocol}`,
          t ? ` · ${t.cache} · ${t.queue} · ${t.masterIpp} rows per master page · last event ${t.lastEventId ?? 'none'}` : '',
        );
      },
      (err: unknown) => (line.textContent = `worker unavailable: ${String(err)}`),
    );
  refresh();
  return { el: h('section', {}, h('h3', {}, 'Service worker'), line), refresh };
}
