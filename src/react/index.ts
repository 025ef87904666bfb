/** React hooks over a `LiveTableClient`: import from 'vantage-live/react'. React 18 or later is a peer dependency. */
export { useLivePage, useLiveRow, affectsRead, type LiveRead, type LiveRow, type ReadableTable } from './use-live-read.js';
export { useLiveWrite, type LiveWrite, type WriteOutcome, type WritableTable } from './use-live-write.js';
export { useLiveStatus, windowOnline, type LiveStatusState, type LiveStatusOptions, type OnlineSource, type StatusTable } from './use-live-status.js';
export { LiveQuery, type LiveQueryState, type LiveQuerySource } from './live-query.js';
