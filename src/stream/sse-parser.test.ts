import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse-parser.js';

/** Parse `bytes` fed in the given chunks; what came out. */
function parse(bytes: Uint8Array, cuts: number[] = []) {
  const events: SseMessage[] = [];
  const retries: number[] = [];
  const comments: string[] = [];
  const parser = new SseParser({ event: (e) => events.push(e), retry: (ms) => retries.push(ms), comment: (c) => comments.push(c) });
  let at = 0;
  for (const cut of [...cuts, bytes.length]) {
    parser.push(bytes.slice(at, cut));
    at = cut;
  }
  parser.end();
  return { events, retries, comments, lastEventId: parser.lastEventId };
}

const utf8 = (s: string) => new TextEncoder().encode(s);

// Every feature of the format at once: CRLF, CR and LF endings, a BOM, comments, multi-line data, ids, retry, a
// field without a colon, an unknown field, an id with NUL (ignored), a blank event (no dispatch) and a multi-byte character.
const STREAM =
  '\uFEFF: hello\r\n' +
  'retry: 2500\n' +
  'event: change\r\n' +
  'id: 41\r\n' +
  'data: {"eventId":"41",\n' +
  'data:"kind":"inserted","id":"é€😀"}\r\n' +
  '\r\n' +
  'event: heartbeat\r' +
  'data: {"intervalMs":15000}\r' +
  '\r' +
  'id: 42\n' +
  'unknown: x\n' +
  'data\n' +
  '\n' +
  'id: 4\u00003\n' +
  'event: reset\n' +
  '\n' +
  'retry: soon\n' +
  'data: unfinished';

const EXPECTED = {
  events: [
    { type: 'change', data: '{"eventId":"41",\n"kind":"inserted","id":"é€😀"}', id: '41' },
    { type: 'heartbeat', data: '{"intervalMs":15000}', id: '41' },
    { type: 'message', data: '', id: '42' },
  ],
  retries: [2500],
  comments: [' hello'],
  lastEventId: '42',
};

describe('SseParser', () => {
  it('parses the whole format in one chunk', () => {
    expect(parse(utf8(STREAM))).toEqual(EXPECTED);
  });

  it('gives the same events with the body split at every byte boundary', () => {
    const bytes = utf8(STREAM);
    for (let cut = 0; cut <= bytes.length; cut++) expect(parse(bytes, [cut]), `split at byte ${cut}`).toEqual(EXPECTED);
  });

  it('gives the same events fed one byte at a time', () => {
    const bytes = utf8(STREAM);
    expect(parse(bytes, Array.from({ length: bytes.length }, (_, i) => i))).toEqual(EXPECTED);
  });

  it('a CRLF split between chunks is one line ending, a CR CR is two', () => {
    const bytes = utf8('data: a\r\n\r\ndata: b\r\rdata: c\n\n');
    const expected = [
      { type: 'message', data: 'a', id: '' },
      { type: 'message', data: 'b', id: '' },
      { type: 'message', data: 'c', id: '' },
    ];
    expect(parse(bytes, [8]).events).toEqual(expected); // between the CR and the LF
    expect(parse(bytes).events).toEqual(expected);
  });

  it('drops an event the body ends before its blank line', () => {
    expect(parse(utf8('data: whole\n\ndata: cut')).events).toEqual([{ type: 'message', data: 'whole', id: '' }]);
  });
});
