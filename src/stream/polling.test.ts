import { describe, expect, it, vi } from 'vitest';
import { ManualEnv } from '../../test/support/manual-env.js';
import { PollingLiveStream } from './polling.js';
import type { LiveEvent, StreamState } from './types.js';

function setup(probe?: () => Promise<unknown>) {
  const env = new ManualEnv();
  const stream = new PollingLiveStream({ intervalMs: 5_000, probe, env });
  const events: LiveEvent[] = [];
  const states: StreamState[] = [];
  stream.onState((s) => states.push(s));
  const off = stream.subscribe((e) => events.push(e));
  /** The next look: once it is scheduled (after the last one finished), move the clock to it. */
  const look = async () => {
    await vi.waitFor(() => expect(env.nextTimerAt).toBeDefined());
    env.advance(env.nextTimerAt! - env.time);
  };
  return { env, stream, events, states, off, look };
}

describe('PollingLiveStream', () => {
  it('tells "changed" on its first look, then only when the probe sees something else', async () => {
    let total = 3;
    const { env, events, states, look } = setup(async () => ({ total }));
    await look();
    await vi.waitFor(() => expect(events).toEqual([{ kind: 'changed' }]));
    expect(states).toEqual(['open']);

    await look(); // same answer: nothing
    await vi.waitFor(() => expect(env.nextTimerAt).toBe(env.time + 5_000));
    expect(events).toHaveLength(1);

    total = 4;
    await look();
    await vi.waitFor(() => expect(events).toHaveLength(2));
  });

  it('after a failed look says "connecting", and the next good look is a change (what happened meanwhile is unknown)', async () => {
    let up = true;
    const { events, states, look } = setup(async () => {
      if (!up) throw new Error('unreachable');
      return 'same';
    });
    await look();
    await vi.waitFor(() => expect(events).toHaveLength(1));
    up = false;
    await look();
    await vi.waitFor(() => expect(states).toEqual(['open', 'connecting']));
    up = true;
    await look();
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(states).toEqual(['open', 'connecting', 'open']);
  });

  it('without a probe every look is a change; it stops looking when the last listener leaves', async () => {
    const { env, events, states, off, look } = setup();
    await look();
    await vi.waitFor(() => expect(events).toHaveLength(1));
    await look();
    await vi.waitFor(() => expect(events).toHaveLength(2));
    await vi.waitFor(() => expect(env.nextTimerAt).toBeDefined());
    off();
    expect(env.nextTimerAt).toBeUndefined();
    expect(states.at(-1)).toBe('closed');
  });
});
