import { h } from './dom.js';

const SHOW_MS = 5_000;
const MAX_SHOWN = 3;

/** Short-lived notes about outcomes that happen away from where the user is looking. */
export function createToasts(): { el: HTMLElement; show(text: string, tone?: 'ok' | 'bad'): void } {
  const el = h('div', { class: 'toasts', testid: 'toasts', 'aria-live': 'polite' });
  return {
    el,
    show(text, tone = 'ok') {
      const toast = h('div', { class: `toast ${tone}`, testid: 'toast', role: tone === 'bad' ? 'alert' : 'status' }, text);
      el.append(toast);
      while (el.children.length > MAX_SHOWN) el.firstElementChild!.remove();
      setTimeout(() => toast.remove(), SHOW_MS);
    },
  };
}
