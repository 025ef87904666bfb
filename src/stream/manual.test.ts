import { describe, expect, it } from 'vitest';
import { ManualLiveStream } from './manual.js';
import type { LiveEvent } from './types.js';

describe('ManualLiveStream', () => {
  it('delivers pushed events to every listener until it unsubscribes', () => {
    const stream = new ManualLiveStream();
    const a: LiveEvent[] = [];
    const b: LiveEvent[] = [];
    const offA = stream.subscribe((e) => a.push(e));
    stream.subscribe((e) => b.push(e));
    stream.push({ kind: 'inserted', id: 'x', eventId: '1' });
    offA();
    offA(); // idempotent
    stream.push({ kind: 'reset' });
    expect(a).toEqual([{ kind: 'inserted', id: 'x', eventId: '1' }]);
    expect(b).toEqual([{ kind: 'inserted', id: 'x', eventId: '1' }, { kind: 'reset' }]);
    expect(stream.listenerCount).toBe(1);
  });

  it('treats the same function subscribed twice as two subscriptions', () => {
    const stream = new ManualLiveStream();
    const seen: LiveEvent[] = [];
    const fn = (e: LiveEvent) => seen.push(e);
    const off1 = stream.subscribe(fn);
    stream.subscribe(fn);
    off1();
    stream.push({ kind: 'changed' });
    expect(seen).toEqual([{ kind: 'changed' }]);
  });
});
