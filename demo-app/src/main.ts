import { workerInfo, type WorkerInfo } from '../../src/page.js';
import { mountApp } from './app.js';
import { connect } from './connect.js';
import { ensureSignedIn } from './session.js';
import './style.css';

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

const app = document.getElementById('app')!;

window.vantageInfo = () => workerInfo();
window.vantageReady = (async () => {
  let session = { user: 'guest', auth: false };
  const connection = await connect(async () => void (session = await ensureSignedIn(app)));
  const { live } = connection;
  window.live = live;
  // Subscribed before asking, and an event wins over the older answer: an `open` heard in between is not lost.
  let heard = false;
  live.subscribe((e) => {
    if (e.type === 'stream') [window.streamState, heard] = [e.state, true];
  });
  // Not awaited: the products go on screen without waiting for the worker's whole report.
  void workerInfo().then((info) => {
    if (!heard) window.streamState = info.tables.find((t) => t.name === 'products')?.stream ?? 'closed';
  }, () => {});
  // `?ui=off`: the tour CLI drives `window.live` alone, so the app's own reads do not warm the cache under it.
  if (new URLSearchParams(location.search).get('ui') === 'off') app.textContent = 'Driven through window.live by the demo tour.';
  else mountApp(app, connection, session);
})();
window.vantageReady.catch((err: unknown) => {
  app.textContent = `The demo could not start: ${err instanceof Error ? err.message : String(err)}`;
  app.classList.add('fatal');
});
