/**
 * Who the demo is for. Against an open master (the default) everyone is
 * "guest"; against a master in --auth mode the page asks for a user and a
 * password (a cookie session), and the worker keeps that user's data apart.
 * With `?auth=bearer` the demo is a bearer-token app instead: the login's
 * token is kept in this page's memory only (no cookie is stored), handed to
 * the worker, and handed again whenever the worker asks (after a restart).
 */
import { provideCredentials, setCredentials, signIn, signOut, workerInfo } from '../../src/page.js';
import { h } from './dom.js';

const bearerMode = new URLSearchParams(location.search).get('auth') === 'bearer';
// The bearer token: in this variable only, gone with the page.
let token: string | undefined;

/** The bearer token this page holds (`?auth=bearer`), if signed in. */
export const bearerToken = (): string | undefined => token;

// Whether the master was last seen in auth mode: offline, it decides between "guest" and the sign-in form.
const AUTH_MODE_KEY = 'vantage-live-demo:auth';
// Set while a sign-out could not reach the master.
const LOGOUT_KEY = 'vantage-live-demo:logout';

/** Sign the worker in as whoever this page is for; with no session in auth mode, show the sign-in form and wait for it. */
export async function ensureSignedIn(root: HTMLElement): Promise<{ user: string; auth: boolean }> {
  if (bearerMode) return signInForm(root); // a token in memory only: every page load signs in
  // A sign-out made offline ends the master's session at the next start online.
  if (localStorage.getItem(LOGOUT_KEY) && (await fetch('/auth/logout', { method: 'POST' }).then((r) => r.ok, () => false))) localStorage.removeItem(LOGOUT_KEY);
  const me = await fetch('/auth/me', { credentials: 'same-origin' }).catch(() => undefined);
  if (!me) {
    // Offline: the worker still serves whoever was signed in last; with no one, a master in auth mode needs the form.
    const { user } = await workerInfo();
    if (user !== undefined) return { user, auth: user !== 'guest' };
    if (localStorage.getItem(AUTH_MODE_KEY) !== '1') {
      await signIn('guest');
      return { user: 'guest', auth: false };
    }
  } else if (me.status === 404) {
    localStorage.removeItem(AUTH_MODE_KEY);
    await signIn('guest');
    return { user: 'guest', auth: false };
  } else if (me.ok) {
    localStorage.setItem(AUTH_MODE_KEY, '1');
    const { user } = (await me.json()) as { user: string };
    await signIn(user);
    await setCredentials(undefined); // a renewed cookie session: writes paused for it go again
    return { user, auth: true };
  } else {
    localStorage.setItem(AUTH_MODE_KEY, '1');
  }
  return signInForm(root);
}

function signInForm(root: HTMLElement): Promise<{ user: string; auth: boolean }> {
  return new Promise((resolve) => {
    const error = h('p', { class: 'error', testid: 'sign-in-error' });
    const user = h('input', { name: 'user', testid: 'sign-in-user', autocomplete: 'username', required: true });
    const password = h('input', { name: 'password', type: 'password', testid: 'sign-in-password', autocomplete: 'current-password', required: true });
    const form = h(
      'form',
      { class: 'sign-in', testid: 'sign-in' },
      h('h1', {}, 'Sign in'),
      h('label', {}, 'User ', user),
      h('label', {}, 'Password ', password),
      h('button', { type: 'submit', testid: 'sign-in-submit' }, 'Sign in'),
      error,
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void (async () => {
        // A bearer app keeps no cookie: with credentials omitted, the answer's Set-Cookie is not stored.
        const res = await fetch('/auth/login', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ user: user.value, password: password.value }),
          credentials: bearerMode ? 'omit' : 'same-origin',
        }).catch(() => undefined);
        if (!res) return void (error.textContent = 'Offline: signing in needs the network');
        if (!res.ok) return void (error.textContent = res.status === 401 ? 'Wrong user or password' : `Sign-in failed: ${res.status}`);
        if (bearerMode) {
          token = ((await res.json()) as { token: string }).token;
          await signIn(user.value, { token });
          provideCredentials(() => token); // a restarted worker has no token: it asks, and this page answers
        } else {
          await signIn(user.value);
          await setCredentials(undefined);
        }
        resolve({ user: user.value, auth: true });
      })().catch((err: unknown) => (error.textContent = String(err)));
    });
    root.replaceChildren(form);
  });
}

/**
 * The sign-out control: what to do with pending writes is the user's choice,
 * and the worker refuses to wipe writes it was asked to keep.
 */
export function signOutControl(user: string): HTMLElement {
  const pending = h(
    'select',
    { testid: 'sign-out-pending', 'aria-label': 'Pending writes' },
    h('option', { value: 'keep' }, 'keep my pending writes for next time'),
    h('option', { value: 'flush' }, 'send my pending writes first'),
    h('option', { value: 'discard' }, 'discard my pending writes'),
  );
  const wipe = h('input', { type: 'checkbox', testid: 'sign-out-wipe' });
  const error = h('span', { class: 'error', testid: 'sign-out-error' });
  const button = h('button', { type: 'button', testid: 'sign-out' }, 'Sign out');
  button.addEventListener('click', () => {
    void (async () => {
      await signOut({ pending: pending.value as 'keep' | 'flush' | 'discard', wipe: wipe.checked });
      // Offline: signed out here at once; the master's session is ended at the next start online.
      localStorage.setItem(LOGOUT_KEY, '1');
      const credentials: RequestInit = token === undefined ? {} : { headers: { authorization: `Bearer ${token}` }, credentials: 'omit' };
      if (await fetch('/auth/logout', { method: 'POST', ...credentials }).then((r) => r.ok, () => false)) localStorage.removeItem(LOGOUT_KEY);
      location.reload();
    })().catch((err: unknown) => (error.textContent = err instanceof Error ? err.message : String(err)));
  });
  return h('div', { class: 'session', testid: 'session' }, h('span', { testid: 'session-user' }, user), pending, h('label', {}, wipe, ' wipe'), button, error);
}
