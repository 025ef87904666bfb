import type { LiveTableClient } from '../../src/page.js';
import { h } from './dom.js';
import { describeEvent } from './event-format.js';
import { clock } from './format.js';

/** Enough history to follow a demo; older lines are dropped so a long session stays light. */
const MAX_LINES = 300;

/** Every table event from every tab, newest first: the browser's counterpart of the Rust demo's `--debug`. */
export function mountEventLog(live: LiveTableClient): HTMLElement {
  const list = h('ol', { class: 'event-log', testid: 'event-log', reversed: true });
  const clear = h('button', { type: 'button', class: 'small', testid: 'event-log-clear', onclick: () => list.replaceChildren() }, 'Clear');
  live.subscribe((e) => {
    const { tag, text } = describeEvent(e);
    list.prepend(
      h(
        'li',
        { testid: 'log-entry', 'data-type': e.type, 'data-tag': tag },
        h('time', {}, clock(Date.now())),
        h('span', { class: `tag tag-${tag}` }, tag),
        h('span', { class: 'text' }, text),
      ),
    );
    while (list.children.length > MAX_LINES) list.lastElementChild!.remove();
  });
  return h('section', { testid: 'inspector-events' }, h('h3', {}, 'Events ', clear), list);
}
