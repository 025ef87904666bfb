/**
 * The subscriber side of figure 8, run as a child process of the bench
 * (`fanout.ts` forks several), so that parsing thousands of streams does not
 * share an event loop with the bench's own timing and writes.
 *
 * Each subscriber is a raw TCP socket with a hand-written `GET .../events`
 * and the least parsing that still checks the stream: the `id:` of each
 * `change` and the write number in its row id. Times are wall-clock
 * (`performance.timeOrigin + performance.now()`), comparable with the
 * parent's send times on the same machine.
 *
 * Messages (IPC, advanced serialization):
 *   parent → child  { type: 'open', urls, table, count, offset, batch, writes }
 *   child → parent  { type: 'ready' } once every stream got its reset
 *   parent → child  { type: 'count' }, answered { type: 'count', complete, heard }
 *   parent → child  { type: 'finish', writes, sentAt }, answered
 *                   { type: 'result', lost, duplicated, delivery: Float64Array }
 */
import { connect, type Socket } from 'node:net';

export type ToChild =
  | { type: 'open'; urls: string[]; table: string; count: number; offset: number; batch: number; writes: number }
  | { type: 'count' }
  | { type: 'finish'; writes: number; sentAt: Float64Array };

export type FromChild =
  | { type: 'ready' }
  | { type: 'count'; complete: number; heard: number }
  | { type: 'result'; lost: number; duplicated: number; delivery: Float64Array }
  | { type: 'error'; message: string };

interface Stream {
  socket: Socket;
  /** Text after the last complete message. */
  rest: string;
  ready: boolean;
  writes: number[];
  eventIds: number[];
  at: number[];
}

const now = (): number => performance.timeOrigin + performance.now();
const CHANGE = /id: (\d+)\nevent: change\ndata: [^\n]*"id":"w(\d+)"/g;

let streams: Stream[] = [];
let writesExpected = 0;

function send(message: FromChild, then?: () => void): void {
  process.send!(message, undefined, {}, then);
}

function open(url: string, table: string, onReady: () => void, onError: (err: Error) => void): Stream {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  const stream: Stream = { socket, rest: '', ready: false, writes: [], eventIds: [], at: [] };
  socket.setEncoding('latin1');
  socket.on('connect', () => socket.write(`GET /api/${table}/events HTTP/1.1\r\nHost: ${url.slice(7)}\r\nAccept: text/event-stream\r\n\r\n`));
  socket.on('data', (chunk: string) => {
    const at = now();
    const text = stream.rest + chunk;
    const end = text.lastIndexOf('\n\n');
    if (end === -1 || (!stream.ready && !text.includes('event: reset'))) return void (stream.rest = text);
    stream.rest = text.slice(end + 2);
    if (!stream.ready) {
      // The reset (head id) comes first: from then on every change is live.
      if (!text.includes('event: reset')) return;
      if (!text.startsWith('HTTP/1.1 200')) return onError(new Error(`feed answered ${text.slice(0, text.indexOf('\r'))}`));
      stream.ready = true;
      onReady();
    }
    for (const found of text.slice(0, end + 1).matchAll(CHANGE)) {
      stream.eventIds.push(Number(found[1]));
      stream.writes.push(Number(found[2]));
      stream.at.push(at);
    }
  });
  socket.on('error', onError);
  return stream;
}

async function openAll(m: Extract<ToChild, { type: 'open' }>): Promise<void> {
  for (let i = 0; i < m.count; i += m.batch) {
    const n = Math.min(m.batch, m.count - i);
    await Promise.all(
      Array.from({ length: n }, (_, j) => new Promise<void>((resolve, reject) => streams.push(open(m.urls[(m.offset + i + j) % m.urls.length]!, m.table, resolve, reject)))),
    );
  }
}

function result(writes: number, sentAt: Float64Array): FromChild {
  let lost = 0;
  let duplicated = 0;
  const delivery = new Float64Array(streams.length * writes);
  let samples = 0;
  for (const s of streams) {
    const seen = new Set<number>();
    for (let k = 0; k < s.writes.length; k++) {
      const n = s.writes[k]!;
      if (seen.has(n)) duplicated += 1;
      else delivery[samples++] = s.at[k]! - sentAt[n]!;
      seen.add(n);
    }
    lost += writes - seen.size;
    // In order: event ids rise strictly (they are global, so every subscriber hears the same sequence).
    if (s.eventIds.some((id, k) => k > 0 && id <= s.eventIds[k - 1]!)) duplicated += 1;
  }
  return { type: 'result', lost, duplicated, delivery: delivery.slice(0, samples) };
}

process.on('message', (m: ToChild) => {
  if (m.type === 'open') {
    writesExpected = m.writes;
    openAll(m).then(
      () => send({ type: 'ready' }),
      (err: Error) => send({ type: 'error', message: err.message }),
    );
  } else if (m.type === 'count') {
    let complete = 0;
    let heard = 0;
    for (const s of streams) {
      heard += s.writes.length;
      if (s.writes.length >= writesExpected) complete += 1;
    }
    send({ type: 'count', complete, heard });
  } else {
    const answer = result(m.writes, m.sentAt);
    for (const s of streams) s.socket.destroy();
    // Exiting (rather than being killed) lets a --cpu-prof profile be written.
    send(answer, () => process.exit(0));
  }
});
