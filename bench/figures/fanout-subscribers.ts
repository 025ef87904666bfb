/**
 * The subscriber side of figure 8, run as a child process of the bench
 * (`fanout.ts` forks several), so that parsing thousands of streams does not
 * share an event loop with the bench's own timing and writes.
 *
 * Each subscriber is a raw TCP socket with a hand-written `GET .../events`.
 * On the hot path a read costs only what a receipt must: the socket reads
 * into one shared buffer (`onread`, no stream machinery, no decoding), and
 * the bytes are copied to the stream's own store with the time they
 * arrived. They are parsed only at the end, after the measurement: the `id:`
 * of each `change` and the write number in its row id, each change timed by
 * the read that completed it. Before, each read went through the stream and
 * a string decoder and was parsed at once, and at 10,000 subscribers that
 * work, on the same two cores as the masters, was part of what was measured.
 * Times are wall-clock (`performance.timeOrigin + performance.now()`),
 * comparable with the parent's send times on the same machine.
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
  /** Every byte read, in order; `bytes.subarray(0, size)` is filled. */
  bytes: Buffer;
  size: number;
  /** For each read: where its bytes end in `bytes`, and when it arrived. */
  readEnds: number[];
  readAt: number[];
  /** Byte offset where the live changes start (after the reset); -1 until the reset arrived. */
  liveFrom: number;
  /** Changes counted so far (`changesSoFar`), and the offset the count has scanned up to. */
  counted: number;
  scanned: number;
  /** The parsed changes (at the end), one entry each. */
  writes: number[];
  eventIds: number[];
  at: number[];
}

const now = (): number => performance.timeOrigin + performance.now();
const CHANGE = /id: (\d+)\nevent: change\ndata: [^\n]*"id":"w(\d+)"/g;
const RESET = Buffer.from('event: reset');
const MESSAGE_END = Buffer.from('\n\n');
// Reads land here first; each stream keeps a copy of its own bytes.
const readBuffer = Buffer.alloc(64 * 1024);

let streams: Stream[] = [];
let writesExpected = 0;

function send(message: FromChild, then?: () => void): void {
  process.send!(message, undefined, {}, then);
}

function append(stream: Stream, data: Buffer): void {
  if (stream.size + data.length > stream.bytes.length) {
    const grown = Buffer.allocUnsafe(Math.max(2 * stream.bytes.length, stream.size + data.length));
    stream.bytes.copy(grown, 0, 0, stream.size);
    stream.bytes = grown;
  }
  data.copy(stream.bytes, stream.size);
  stream.size += data.length;
}

function open(url: string, table: string, onReady: () => void, onError: (err: Error) => void): Stream {
  const { hostname, port } = new URL(url);
  // Assigned below, before the socket can read anything.
  let stream: Stream;
  const onread = (n: number, buffer: Buffer): boolean => {
    const at = now();
    append(stream, buffer.subarray(0, n));
    stream.readEnds.push(stream.size);
    stream.readAt.push(at);
    if (stream.liveFrom === -1) {
      // The reset (head id) comes first: from then on every change is live.
      const reset = stream.bytes.subarray(0, stream.size).indexOf(RESET);
      const end = reset === -1 ? -1 : stream.bytes.subarray(0, stream.size).indexOf(MESSAGE_END, reset);
      if (end === -1) return true;
      const head = stream.bytes.toString('latin1', 0, 12);
      if (head !== 'HTTP/1.1 200') onError(new Error(`feed answered ${stream.bytes.toString('latin1', 0, stream.bytes.indexOf('\r'))}`));
      stream.liveFrom = end + 2;
      onReady();
    }
    return true;
  };
  const socket = connect({ port: Number(port), host: hostname, onread: { buffer: readBuffer, callback: onread } });
  stream = { socket, bytes: Buffer.allocUnsafe(4096), size: 0, readEnds: [], readAt: [], liveFrom: -1, counted: 0, scanned: 0, writes: [], eventIds: [], at: [] };
  socket.on('connect', () => socket.write(`GET /api/${table}/events HTTP/1.1\r\nHost: ${url.slice(7)}\r\nAccept: text/event-stream\r\n\r\n`));
  socket.on('error', onError);
  return stream;
}

/** Parses the changes a stream received after its reset; each is timed by the read that brought its last byte. */
function parse(stream: Stream): void {
  if (stream.liveFrom === -1 || stream.writes.length > 0) return;
  const text = stream.bytes.toString('latin1', 0, stream.size);
  let read = 0;
  for (const found of text.slice(stream.liveFrom).matchAll(CHANGE)) {
    const end = text.indexOf('\n\n', stream.liveFrom + found.index!);
    if (end === -1) break;
    while (stream.readEnds[read]! < end + 2) read += 1;
    stream.eventIds.push(Number(found[1]));
    stream.writes.push(Number(found[2]));
    stream.at.push(stream.readAt[read]!);
  }
}

/** How many changes a stream has received so far: its "event: change" lines, counted from where the last count stopped. */
function changesSoFar(stream: Stream): number {
  if (stream.liveFrom === -1) return 0;
  const filled = stream.bytes.subarray(0, stream.size);
  let at = filled.indexOf(CHANGE_LINE, Math.max(stream.scanned, stream.liveFrom));
  for (; at !== -1; at = filled.indexOf(CHANGE_LINE, at + 1)) {
    stream.counted += 1;
    stream.scanned = at + 1;
  }
  // A line cut off at the end is found next time.
  stream.scanned = Math.max(stream.scanned, stream.size - CHANGE_LINE.length + 1);
  return stream.counted;
}
const CHANGE_LINE = Buffer.from('event: change\n');

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
    parse(s);
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
      const changes = changesSoFar(s);
      heard += changes;
      if (changes >= writesExpected) complete += 1;
    }
    send({ type: 'count', complete, heard });
  } else {
    const answer = result(m.writes, m.sentAt);
    for (const s of streams) s.socket.destroy();
    // Exiting (rather than being killed) lets a --cpu-prof profile be written.
    send(answer, () => process.exit(0));
  }
});
