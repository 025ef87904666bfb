import { h } from './dom.js';

/**
 * "A new version is ready": shown when a newer service worker is installed
 * and waiting. It waits for the user, so a reload never surprises anyone
 * mid-edit; the queue it inherits is the same database.
 */
export function updateBanner(onUpdateWaiting: (listener: (activate: () => void) => void) => void): HTMLElement {
  const reload = h('button', { type: 'button', class: 'primary', testid: 'update-reload' }, 'Reload');
  const el = h('div', { class: 'update-banner', testid: 'update-banner', role: 'alert', hidden: true }, h('span', {}, 'A new version is ready.'), reload);
  onUpdateWaiting((activate) => {
    el.hidden = false;
    reload.onclick = () => {
      reload.textContent = 'Reloading…';
      activate();
    };
  });
  return el;
}
