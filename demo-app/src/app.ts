import type { Connection } from './connect.js';
import { addForm } from './add-form.js';
import { mountDeadLetters } from './dead-letters.js';
import { h } from './dom.js';
import { opLabel, reason } from './format.js';
import { mountEventLog } from './event-log.js';
import { mountInspector } from './inspector.js';
import { mountOfflinePanel } from './offline-panel.js';
import { mountProductList } from './product-list.js';
import { mountSimulatePanel } from './simulate-panel.js';
import { signOutControl } from './session.js';
import { mountStatusBar } from './status-bar.js';
import { createToasts } from './toasts.js';
import { updateBanner } from './update-banner.js';

/** Lay out the demo in `root`: status bar on top, products on the left, simulate and inspector on the right (below on a phone). */
export function mountApp(root: HTMLElement, { live, persisted, onUpdateWaiting }: Connection, session: { user: string; auth: boolean }): void {
  const toasts = createToasts();
  const writeError = (err: unknown) => toasts.show(`Not queued: ${(err as Error).message ?? String(err)}`, 'bad');
  const status = mountStatusBar(live, persisted);
  const list = mountProductList(live, { onRead: (read) => status.showRead(read), onWriteError: writeError });

  live.subscribe((e) => {
    if (e.type === 'applied') toasts.show(`The master confirmed ${opLabel(e.op)}.`);
    if (e.type === 'dead') toasts.show(`The master refused ${opLabel(e.op)}: ${reason(e.error)}`, 'bad');
  });

  const aside = h('aside', { class: 'side-column' });
  const eventLog = mountEventLog(live); // listening from the start: the log shows the first read too
  root.replaceChildren(
    h('header', { class: 'top' }, h('div', { class: 'brand' }, h('img', { src: '/icon.svg', alt: '', width: 28, height: 28 }), h('h1', {}, 'vantage-live')), status.el, session.auth ? signOutControl(session.user) : null),
    updateBanner(onUpdateWaiting),
    h(
      'main',
      { class: 'layout' },
      h(
        'div',
        { class: 'main-column' },
        h(
          'p',
          { class: 'intro' },
          'Products live on a master server. This page reads and writes them through a service worker that caches every page it has seen and queues every write. ',
          h('strong', {}, 'Go offline and keep paging and editing'),
          ', then come back: queued writes reach the master once, in order.',
        ),
        addForm(live, { onQueued: () => void list.reload(), onWriteError: writeError }),
        h('p', { class: 'hint muted' }, 'The master refuses a negative price: try −1 to see a rejected write.'),
        mountDeadLetters(live, writeError),
        list.el,
      ),
      aside,
    ),
    toasts.el,
  );
  // The side panels start with calls of their own to the worker (info, the queue, the cache's entries): they wait for
  // the list's first page, and its frame, so an offline start shows the products first.
  const mountSide = () =>
    aside.replaceChildren(mountOfflinePanel(live, () => window.vantageInfo()), mountSimulatePanel(list.settledRows, { pendingIds: list.pendingIds, flush: () => live.flush() }), mountInspector(live, eventLog));
  void list.shown.finally(() => requestAnimationFrame(() => setTimeout(mountSide)));
}
