/**
 * Calls to the reference master that bypass the library on purpose: its
 * fault injection (`/admin/chaos`, on when it runs with `--chaos`), its seed,
 * and a direct edit, as another client of the master would make.
 */
import type { Id, Row } from '../../src/index.js';
import type { ChaosState } from '../server/chaos.js';

export type { ChaosState };

/** The settings `POST /admin/chaos` takes; each one left out keeps its value. */
export type ChaosSettings = Partial<Omit<ChaosState, 'refuseForMs' | 'pauseFeed'>> & { refuseForMs?: number; pauseFeed?: boolean };

/** The master answered with an error, or not at all. */
export class AdminError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AdminError';
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
    });
  } catch {
    throw new AdminError('the master cannot be reached');
  }
  const text = await res.text();
  const parsed = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const message = (parsed as { error?: { message?: string } } | undefined)?.error?.message ?? res.statusText;
    throw new AdminError(`${res.status}: ${message}`, res.status);
  }
  return parsed as T;
}

/** The master's fault-injection settings; undefined when it runs without `--chaos`. */
export async function readChaos(): Promise<ChaosState | undefined> {
  try {
    return await call<ChaosState>('GET', '/admin/chaos');
  } catch (err) {
    if (err instanceof AdminError && err.status === 404) return undefined;
    throw err;
  }
}

export function changeChaos(settings: ChaosSettings): Promise<ChaosState> {
  return call('POST', '/admin/chaos', settings);
}

export function resetChaos(): Promise<ChaosState> {
  return call('POST', '/admin/chaos/reset');
}

/** Replace the products with the three sample rows and `rows` generated ones. */
export function seedMaster(rows: number): Promise<{ rows: number }> {
  return call('POST', '/admin/seed', { rows });
}

/** Change a row on the master directly, not through the queue: the change feed tells every tab. */
export function patchOnMaster(id: Id, partial: Row): Promise<Row> {
  return call('PATCH', `/api/products/${encodeURIComponent(id)}`, partial);
}

/** Change a row as another client would, through the admin API: it works even while the master refuses the app's API calls ("down"). */
export function editAsSomeoneElse(id: Id, patch: Row): Promise<Row> {
  return call('POST', '/admin/edit', { id, patch });
}

/** Page 1 straight from the master, for when nothing is on screen to pick from. */
export async function firstRowsOnMaster(): Promise<Row[]> {
  return (await call<{ rows: Row[] }>('GET', '/api/products?page=1&ipp=50')).rows;
}
