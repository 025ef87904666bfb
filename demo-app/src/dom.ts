/** Tiny DOM builders: the demo has no framework, and these keep the view code short. */

type Child = Node | string | number | null | undefined | false;
type Listener = (event: Event) => void;
type Props = Record<string, string | number | boolean | Listener | undefined>;

/**
 * Make an element. `testid` sets `data-testid`, `class` sets the class,
 * `onclick`-style props add listeners, booleans toggle attributes, and any
 * other prop becomes an attribute.
 */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') el.addEventListener(name.replace(/^on/, ''), value);
    else if (name === 'testid') el.dataset.testid = String(value);
    else if (name === 'class') el.className = String(value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  el.append(...nodes(children));
  return el;
}

/** Replace every child of `el`; empty children (null, undefined, false) are skipped as in `h`. */
export function replaceChildren(el: Element, ...children: Child[]): void {
  el.replaceChildren(...nodes(children));
}

function nodes(children: Child[]): Array<Node | string> {
  return children.flatMap((c) => (c === null || c === undefined || c === false ? [] : [typeof c === 'number' ? String(c) : c]));
}

/** A `<details>` panel that remembers whether the user left it open; open by default on wide screens. */
export function rememberedDetails(key: string, props: Props, summary: string, ...children: Child[]): HTMLDetailsElement {
  const stored = localStorage.getItem(`vantage-demo:${key}`);
  const open = stored === null ? matchMedia('(min-width: 960px)').matches : stored === 'open';
  const details = h('details', { ...props, open }, h('summary', {}, summary), ...children);
  details.addEventListener('toggle', () => localStorage.setItem(`vantage-demo:${key}`, details.open ? 'open' : 'closed'));
  return details;
}
