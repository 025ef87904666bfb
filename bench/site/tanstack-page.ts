/**
 * The peer's measuring page (/bench/tq/index.html): TanStack Query's core,
 * persisted to IndexedDB and with offline mutations, wired the way its docs
 * recommend ("Persisting offline mutations" in the mutations guide, and the
 * persistQueryClient / createAsyncStoragePersister plugins), with no UI:
 *
 * - one QueryClient whose `gcTime` outlives the persister's `maxAge`, mounted
 *   (what QueryClientProvider does: it then hears `online` and `offline`);
 * - `setMutationDefaults(['insert'], { mutationFn, retry })`, so a mutation
 *   restored after a reload still has a function to run;
 * - `persistQueryClient` with `createAsyncStoragePersister` over idb-keyval
 *   (one IndexedDB record holding the whole dehydrated client, queries and
 *   paused mutations, rewritten at most once a second);
 * - once restored, `resumePausedMutations()` and then `invalidateQueries()`,
 *   as the docs' `onSuccess` does.
 *
 * One line the docs do not show: `onlineManager.setOnline(navigator.onLine)`.
 * TanStack Query v5 starts out assuming it is online; without the line, a page
 * reloaded while offline runs its restored mutations at once, they fail, and
 * after their retries they are dropped.
 */
import { MutationObserver, QueryClient, onlineManager } from '@tanstack/query-core';
import { persistQueryClient } from '@tanstack/query-persist-client-core';
import { createAsyncStoragePersister } from '@tanstack/query-async-storage-persister';
import { del, get, set } from 'idb-keyval';

const DAY = 24 * 60 * 60 * 1000;
const PERSIST_KEY = 'tanstack-query';
type Row = { id: string; name: string; price: number };

onlineManager.setOnline(navigator.onLine);

let networkRequests = 0;
async function api(path: string, init?: RequestInit): Promise<unknown> {
  networkRequests++;
  const res = await fetch(path, init);
  if (!res.ok) throw new Error(`${init?.method ?? 'GET'} ${path}: HTTP ${res.status}`);
  return res.json();
}

const queryClient = new QueryClient({ defaultOptions: { queries: { gcTime: DAY, staleTime: 5 * 60 * 1000 } } });
// What QueryClientProvider does in React: listen to focus and online events (going online resumes paused mutations).
queryClient.mount();
queryClient.setMutationDefaults(['insert'], {
  mutationFn: (row: Row) => api('/api/products', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(row) }),
  retry: 3,
});

const persister = createAsyncStoragePersister({ storage: { getItem: get, setItem: set, removeItem: del }, key: PERSIST_KEY });
const startedAt = performance.now();
const [, restored] = persistQueryClient({ queryClient, persister, maxAge: DAY });

const ready = restored.then(async () => {
  const restoredAt = performance.now();
  const paused = queryClient.getMutationCache().getAll().filter((m) => m.state.isPaused).length;
  // The docs' onSuccess: resume what was paused, then refetch. Invalidating with nothing resumed would only throw the restored cache away.
  if (paused > 0) void queryClient.resumePausedMutations().then(() => queryClient.invalidateQueries());
  return { restoreMs: restoredAt - startedAt, restoredAt, paused };
});

const page = {
  ready,
  /** One page of 50 rows, as an app would ask for it: from the cache while fresh, from the master otherwise. */
  read: (n: number) => queryClient.fetchQuery({ queryKey: ['products', n], queryFn: () => api(`/api/products?page=${n}&ipp=50`) }) as Promise<{ rows: Row[] }>,
  /** Starts an insert and returns at once (offline it pauses; its promise settles only when it runs). */
  insert: (row: Row) => void new MutationObserver<unknown, Error, Row>(queryClient, { mutationKey: ['insert'] }).mutate(row).catch(() => {}),
  paused: () => queryClient.getMutationCache().getAll().filter((m) => m.state.isPaused).length,
  /** Queries and paused mutations in the persisted record, as a reload would find them. */
  persisted: async () => {
    const raw = await get<string>(PERSIST_KEY);
    if (raw === undefined) return { queries: 0, mutations: 0 };
    const client = JSON.parse(raw) as { clientState: { queries: unknown[]; mutations: unknown[] } };
    return { queries: client.clientState.queries.length, mutations: client.clientState.mutations.length };
  },
  networkRequests: () => networkRequests,
  /** Queries in memory, and their keys. */
  cached: () => queryClient.getQueryCache().getAll().map((q) => `${JSON.stringify(q.queryKey)}:${q.state.status}:${q.isStale()}`).join(' '),
};

declare global {
  interface Window {
    tq: typeof page;
  }
}
window.tq = page;
document.getElementById('status')!.textContent = 'ready';
