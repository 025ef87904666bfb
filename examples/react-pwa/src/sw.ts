/// <reference lib="webworker" />
import { IdbCache, IdbQueue, LiveTable, RestTable } from 'vantage-live';
import { serveLiveTables } from 'vantage-live/worker';
import { serveAppShell, type PrecacheEntries } from 'vantage-live/worker-shell';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: PrecacheEntries };

// The app shell, precached: a reload works offline.
serveAppShell(self.__WB_MANIFEST);

// One cache and one queue in IndexedDB, shared by every tab; a list answers from the cache at once and refreshes behind.
const api = new URL('api', self.registration.scope).pathname;
serveLiveTables({
  products: new LiveTable(new RestTable(api, 'products'), 'products', new IdbCache(), { queue: new IdbQueue(), freshness: 'swr' }),
});
