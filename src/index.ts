/**
 * vantage-live: an offline-first cache and durable write queue for
 * table-shaped data. The page and worker sides of the service-worker bridge
 * are `vantage-live/page` and `vantage-live/worker`.
 */

// ---- Use: what an app builds with ----
export type { Id, Row, PageRequest, TableLike, WriteOptions } from './types.js';
export { LiveTable, type LiveTableOptions, type LiveTableEvent, type ReadResult, type ReadOptions, type Freshness } from './live-table.js';
export type { PrefetchOptions, PrefetchResult, PrefetchEvent, PageRange, OfflineStatus, PinStatus } from './prefetch.js';
export { RestTable, type RestTableOptions } from './master/rest-table.js';
export { ADAPTERS, jsonServerAdapter, postgrestAdapter, vantageAdapter, type Delivery, type RestAdapter, type RestAnswer, type RestCall, type RestFailure, type WriteContext } from './master/adapters.js';
export { MemoryTable } from './master/memory-table.js';
export { mergeFields, VERSION_FIELD, type ConflictPolicy, type MergeFn, type MergeResult } from './conflicts.js';
export { MemCache } from './cache/mem-cache.js';
export { NoCache } from './cache/no-cache.js';
export { IdbCache } from './cache/idb-cache.js';
export { MemQueue } from './queue/mem-queue.js';
export { IdbQueue } from './queue/idb-queue.js';
export { SseLiveStream, type SseLiveStreamOptions } from './stream/sse.js';
export { FetchSseLiveStream, type FetchSseLiveStreamOptions } from './stream/fetch-sse.js';
export { SseParser, type SseMessage, type SseParserHandlers } from './stream/sse-parser.js';
export { WebSocketLiveStream, type WebSocketLiveStreamOptions } from './stream/websocket.js';
export { ManualLiveStream } from './stream/manual.js';
export { PollingLiveStream, type PollingOptions } from './stream/polling.js';
export {
  VantageError,
  MasterRejectedError,
  MasterUnavailableError,
  UnexpectedResponseError,
  AuthRequiredError,
  OfflineMissError,
  InvalidInputError,
  StorageFullError,
  UnknownOpError,
  DeadLetterError,
  ConflictError,
  BridgeTimeoutError,
  ProtocolMismatchError,
  NoServiceWorkerError,
  VANTAGE_ERROR_CODES,
  type VantageErrorCode,
  type ErrorInfo,
} from './errors.js';
export { configureLogging, logFilter, DEFAULT_LOG_FILTER, type Level, type LogFields, type LogRecord, type LogSink } from './log.js';
export { MAX_ROW_BYTES } from './validate.js';
export { MAX_ID_LENGTH } from './ids.js';

// ---- Extend: contracts and base classes for your own caches, queues, streams and masters ----
export type { Cache, CachedRows, CacheEntryInfo, CacheLookup, CachePin, CacheUsage } from './cache/types.js';
export { DEFAULT_BUDGET_BYTES, type BudgetOptions } from './cache/budget.js';
export type { WriteQueue, NewOp, QueuedOp, DoneOp, AppliedOp, OpRecord, OpKind, OpBody, Take, IdRewrite, DeathReason, OpBase, Amend, Version } from './queue/types.js';
export type { PendingOp } from './queue/table-queue.js';
export type { LiveEvent, LiveStream, StreamState } from './stream/types.js';
export { ReconnectingLiveStream, type ReconnectingStreamOptions } from './stream/reconnecting.js';
export { defaultRetryPolicy, type RetryPolicy } from './queue/retry-policy.js';
export type { BackoffPolicy } from './backoff.js';
export { defaultEnv, type Env } from './env.js';
export { isTransient, errorInfo } from './errors.js';
export { idProblem } from './ids.js';
export { logger, type Logger } from './log.js';
