/** The service worker side of vantage-live: import from 'vantage-live/worker'. */
export { serveLiveTables, SYNC_TAG, PERIODIC_SYNC_TAG, type ServeOptions, type LiveTableServer, type WorkerScope } from './bridge/worker.js';
export { PROTOCOL_VERSION } from './bridge/protocol.js';
export type { TablesFor, UserScope, SignOutOptions } from './bridge/session.js';
