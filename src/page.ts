/** The page side of vantage-live in a service-worker app: import from 'vantage-live/page'. */
export {
  connectLiveTable,
  subscribeTable,
  keepFlushing,
  workerInfo,
  requestPersistence,
  callWorker,
  signIn,
  signOut,
  setCredentials,
  provideCredentials,
  type BridgeOptions,
  type ConnectOptions,
  type LiveTableClient,
  type ClientReadResult,
} from './bridge/page.js';
export { hostLiveStream, type ClosableStream } from './bridge/leader.js';
export { PROTOCOL_VERSION, type WorkerInfo } from './bridge/protocol.js';
export type { PrefetchOptions, PrefetchResult, PrefetchEvent, PageRange, OfflineStatus, PinStatus } from './prefetch.js';
