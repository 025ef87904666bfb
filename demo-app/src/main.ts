import { workerInfo, type WorkerInfo } from '../../src/page.js';
import { connect } from './connect.js';

declare global {
  interface Window {
    /** The connected products LiveTable, for poking at in devtools. */
    live: Awaited<ReturnType<typeof connect>>['live'];
    /** Resolves once `window.live` is connected. */
    vantageReady: Promise<void>;
    /** The change feed's state as the worker last reported it. */
    streamState: string;
    /** The worker's version, tables, queue sizes and stream state. */
    vantageInfo: () => Promise<WorkerInfo>;
  }
}

window.vantageInfo = () => workerInfo();
window.vantageReady = (async () => {
  const { live } = await connect();
  window.live = live;
  window.streamState = (await workerInfo()).tables.find((t) => t.name === 'products')?.stream ?? 'closed';
  live.subscribe((e) => {
    if (e.type === 'stream') window.streamState = e.state;
  });
  const app = document.getElementById('app')!;
  const render = async () => {
    const read = await live.read({ page: 1 });
    app.textContent = `${read.rows.length} products from ${read.source}${read.stale ? ' (stale)' : ''}`;
  };
  await render().catch((err) => (app.textContent = String(err)));
})();
