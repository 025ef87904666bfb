/** The page side of vantage-live in a service-worker app: import from 'vantage-live/page'. */
export { connectLiveTable, subscribeTable, keepFlushing, workerInfo, requestPersistence, callWorker, type BridgeOptions, type LiveTableClient } from './bridge/page.js';
export { hostLiveStream, type ClosableStream } from './bridge/leader.js';
export { PROTOCOL_VERSION, type WorkerInfo } from './bridge/protocol.js';
