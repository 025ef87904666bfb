import type { LiveTableEvent } from '../../src/index.js';
import { clock, opLabel, reason, rowSummary } from './format.js';

/** One line of the event log: a short tag (hit, miss, enqueue, applied, …) and what happened. */
export interface LoggedEvent {
  tag: string;
  text: string;
}

/** Say what a table event means, like the Rust demo's `--debug` lines. */
export function describeEvent(e: LiveTableEvent): LoggedEvent {
  switch (e.type) {
    case 'read':
      return { tag: e.outcome, text: `${e.cacheKey} · ${Math.round(e.ms)} ms in the worker` };
    case 'queued':
      return { tag: 'enqueue', text: `${opLabel(e.op)} ${rowSummary(e.op)}`.trim() };
    case 'applied':
      return { tag: 'applied', text: `${opLabel(e.op)}: the master confirmed` };
    case 'retrying':
      return { tag: 'retry', text: `${opLabel(e.op)} · ${reason(e.error)} · again at ${clock(e.retryAt)}` };
    case 'dead':
      return { tag: 'dead', text: `${opLabel(e.op)} · ${reason(e.error)}` };
    case 'conflict':
      return { tag: 'conflict', text: `${opLabel(e.op)} · the row changed on the master meanwhile: keep mine, keep theirs or merge` };
    case 'assigned':
      return { tag: 'assigned', text: `new row ${e.temporaryId} is ${e.id} on the master` };
    case 'retried':
      return { tag: 'retry', text: `${opLabel(e.op)} sent again, at the end of the queue${e.overtaken ? ` (after ${e.overtaken} newer write(s) to its row)` : ''}` };
    case 'queue':
      return { tag: 'queue', text: `${e.pending} pending, ${e.dead} rejected` };
    case 'auth':
      return { tag: 'auth', text: e.state === 'required' ? `writes wait for sign-in${e.error ? ` (${e.error.status ?? ''} ${e.error.message})` : ''}` : 'signed in again: writes go on' };
    case 'refreshed':
      return { tag: 'refreshed', text: `${e.cacheKey} refetched in the background` };
    case 'invalidated':
      return { tag: 'invalidated', text: `${e.prefix}* marked stale (after ${e.reason === 'write' ? 'a confirmed write' : 'a change event'})` };
    case 'live': {
      const id = 'id' in e.event ? ` ${e.event.id}` : '';
      const eventId = e.event.eventId === undefined ? '' : ` (event ${e.event.eventId})`;
      return { tag: 'live', text: `${e.event.kind}${id}${eventId} on the master` };
    }
    case 'stream':
      return { tag: 'stream', text: `change feed ${e.state}` };
    case 'prefetch':
      return { tag: 'prefetch', text: `${e.done}/${e.total} pages, ${e.rows} rows${e.state === 'running' ? '' : ` · ${e.state}${e.error ? `: ${e.error.message}` : ''}`}` };
  }
}
