// @vitest-environment jsdom
/**
 * The React hooks against a fake LiveTableClient: they render what the table
 * answers, re-read on the events that change it and only those, coalesce a
 * burst of events, let go of the table on unmount, and surface errors.
 */
import { act, renderHook, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup } from '@testing-library/react';
import type { WorkerInfo } from '../../src/bridge/protocol.js';
import { useLivePage, useLiveRow, useLiveStatus, useLiveWrite, type OnlineSource } from '../../src/react/index.js';
import { deferred, events, fakeTable, page, type FakeTable } from './fake-table.js';

afterEach(cleanup);

const apple = { id: 'a', name: 'Apple', price: 1 };
const bread = { id: 'b', name: 'Bread', price: 3 };

/** Answer the table's `index`-th read (0-based) with `value`, and let React render it. */
async function answerRead(table: FakeTable, index: number, value: unknown, method = 'read'): Promise<void> {
  await waitFor(() => expect(table.callsOf(method).length).toBeGreaterThan(index));
  await act(async () => table.callsOf(method)[index]!.answer.resolve(value));
}

describe('useLivePage', () => {
  it('loads a page, then renders the re-read that an applied write causes', async () => {
    const table = fakeTable();
    const { result } = renderHook(() => useLivePage(table, { page: 1 }));
    expect(result.current).toMatchObject({ isLoading: true, data: undefined });
    expect(table.callsOf('read')[0]!.args[0]).toEqual({ page: 1 });

    await answerRead(table, 0, page([['a', apple]]));
    expect(result.current.isLoading).toBe(false);
    expect(result.current.data?.rows).toEqual([['a', apple]]);

    act(() => table.emit(events.applied()));
    await answerRead(table, 1, page([['a', apple], ['b', bread]]));
    expect(result.current.data?.rows.map(([id]) => id)).toEqual(['a', 'b']);
  });

  it('coalesces a burst of events during a read into one more read', async () => {
    const table = fakeTable();
    renderHook(() => useLivePage(table));
    act(() => {
      for (let i = 0; i < 20; i++) table.emit(events.queued());
    });
    expect(table.callsOf('read')).toHaveLength(1);

    await answerRead(table, 0, page([]));
    expect(table.callsOf('read')).toHaveLength(2);
    await answerRead(table, 1, page([]));
    expect(table.callsOf('read')).toHaveLength(2);
  });

  it('does not re-read on events that cannot change the page', async () => {
    const table = fakeTable();
    renderHook(() => useLivePage(table, { page: 1 }));
    await answerRead(table, 0, page([], 'products/page_1'));
    act(() => {
      table.emit(events.read());
      table.emit(events.queue(1, 0));
      table.emit(events.stream('open'));
      table.emit(events.refreshed('products/page_2'));
      table.emit(events.invalidated('orders/'));
    });
    expect(table.callsOf('read')).toHaveLength(1);

    act(() => table.emit(events.refreshed('products/page_1')));
    expect(table.callsOf('read')).toHaveLength(2);
    await answerRead(table, 1, page([], 'products/page_1'));
    act(() => table.emit(events.invalidated('products')));
    expect(table.callsOf('read')).toHaveLength(3);
  });

  it('compares the request by value: an equal object does not read again, another page does', async () => {
    const table = fakeTable();
    const { rerender } = renderHook(({ n }) => useLivePage(table, { page: n }), { initialProps: { n: 1 } });
    await answerRead(table, 0, page([]));
    rerender({ n: 1 });
    expect(table.callsOf('read')).toHaveLength(1);
    rerender({ n: 2 });
    expect(table.callsOf('read')).toHaveLength(2);
    expect(table.callsOf('read')[1]!.args[0]).toEqual({ page: 2 });
  });

  it('stops listening to the table on unmount', async () => {
    const table = fakeTable();
    const { unmount } = renderHook(() => useLivePage(table));
    await answerRead(table, 0, page([]));
    expect(table.listenerCount()).toBe(1);
    unmount();
    expect(table.listenerCount()).toBe(0);
    table.emit(events.applied());
    expect(table.callsOf('read')).toHaveLength(1);
  });

  it('shows a failed read as an error, keeps the last rows through it, and clears it on the next good read', async () => {
    const table = fakeTable();
    const { result } = renderHook(() => useLivePage(table));
    const offline = Object.assign(new Error('offline, and page 1 was never read'), { code: 'offline_miss' });
    await act(async () => table.callsOf('read')[0]!.answer.reject(offline));
    expect(result.current).toMatchObject({ isLoading: false, data: undefined, error: offline });

    act(() => table.emit(events.invalidated('products')));
    await answerRead(table, 1, page([['a', apple]]));
    expect(result.current).toMatchObject({ error: undefined, data: { rows: [['a', apple]] } });

    act(() => table.emit(events.invalidated('products')));
    await act(async () => table.callsOf('read')[2]!.answer.reject(offline));
    expect(result.current).toMatchObject({ error: offline, data: { rows: [['a', apple]] } });
  });
});

describe('useLiveRow', () => {
  it('is the row of a readOne, undefined when there is none', async () => {
    const table = fakeTable();
    const { result } = renderHook(() => useLiveRow(table, 'a'));
    expect(table.callsOf('readOne')[0]!.args[0]).toBe('a');
    await answerRead(table, 0, page([['a', apple]], 'products/row_a'), 'readOne');
    expect(result.current.data).toEqual(apple);

    act(() => table.emit(events.applied()));
    await answerRead(table, 1, page([], 'products/row_a'), 'readOne');
    expect(result.current.data).toBeUndefined();
    expect(result.current.result?.rows).toEqual([]);
  });
});

describe('useLiveWrite', () => {
  it('is pending while a write is in flight, passes its arguments through and answers its value', async () => {
    const table = fakeTable();
    const { result } = renderHook(() => useLiveWrite(table));
    expect(result.current.isPending).toBe(false);
    let outcome!: Promise<unknown>;
    act(() => void (outcome = result.current.insert('d', { name: 'Donut', price: 5 })));
    expect(result.current.isPending).toBe(true);
    expect(table.callsOf('insert')[0]!.args).toEqual(['d', { name: 'Donut', price: 5 }, undefined]);

    await act(async () => table.callsOf('insert')[0]!.answer.resolve({ id: 'd', name: 'Donut', price: 5 }));
    await expect(outcome).resolves.toEqual({ ok: true, value: { id: 'd', name: 'Donut', price: 5 } });
    expect(result.current).toMatchObject({ isPending: false, error: undefined });
  });

  it('keeps the last error without rejecting, until a write succeeds or reset', async () => {
    const table = fakeTable();
    const { result } = renderHook(() => useLiveWrite(table));
    const refused = Object.assign(new Error('price must be a number'), { code: 'invalid_input' });
    let outcome!: Promise<unknown>;
    act(() => void (outcome = result.current.patch('a', { price: -1 }, { wait: 'applied' })));
    expect(table.callsOf('patch')[0]!.args[2]).toEqual({ wait: 'applied' });
    await act(async () => table.callsOf('patch')[0]!.answer.reject(refused));
    await expect(outcome).resolves.toEqual({ ok: false, error: refused });
    expect(result.current).toMatchObject({ isPending: false, error: refused });

    act(() => result.current.reset());
    expect(result.current.error).toBeUndefined();
    act(() => void result.current.delete('a'));
    await act(async () => table.callsOf('delete')[0]!.answer.reject(refused));
    expect(result.current.error).toBe(refused);
    act(() => void result.current.delete('a'));
    await act(async () => table.callsOf('delete')[1]!.answer.resolve(undefined));
    expect(result.current.error).toBeUndefined();
  });
});

describe('useLiveStatus', () => {
  type TableInfo = WorkerInfo['tables'][number];
  function manualOnline(initial: boolean): OnlineSource & { set(online: boolean): void; listeners: Set<() => void> } {
    let online = initial;
    const listeners = new Set<() => void>();
    return {
      listeners,
      isOnline: () => online,
      subscribe: (l) => (listeners.add(l), () => listeners.delete(l)),
      set: (next) => ((online = next), listeners.forEach((l) => l())),
    };
  }
  const info = (pending: number, dead: number): WorkerInfo => ({
    protocol: 1,
    version: 'v7',
    tables: [
      { name: 'orders', cacheKey: 'orders', masterIpp: 50, cache: 'idb', queue: 'idb', pending: 99, dead: 99, stream: 'closed' } as TableInfo,
      { name: 'products', cacheKey: 'products', masterIpp: 50, cache: 'idb', queue: 'idb', pending, dead, stream: 'open', authRequired: false } as TableInfo,
    ],
  });

  it('starts from the worker info of its table, then follows queue and stream events and the network', async () => {
    const table = fakeTable();
    const online = manualOnline(true);
    const { result } = renderHook(() => useLiveStatus(table, { info: async () => info(2, 1), online }));
    await waitFor(() => expect(result.current.version).toBe('v7'));
    expect(result.current).toEqual({ online: true, pending: 2, dead: 1, stream: 'open', auth: 'ok', version: 'v7', error: undefined });

    act(() => table.emit(events.queue(5, 0)));
    act(() => table.emit(events.stream('connecting')));
    act(() => online.set(false));
    expect(result.current).toMatchObject({ online: false, pending: 5, dead: 0, stream: 'connecting' });
    act(() => table.emit({ type: 'auth', state: 'required' }));
    expect(result.current.auth).toBe('required');
    act(() => table.emit({ type: 'auth', state: 'ok' }));
    expect(result.current.auth).toBe('ok');
  });

  it('keeps an event heard before the worker answered over the older answer', async () => {
    const table = fakeTable();
    const answer = deferred<WorkerInfo>();
    const { result } = renderHook(() => useLiveStatus(table, { info: () => answer.promise, online: manualOnline(true) }));
    act(() => table.emit(events.queue(0, 0)));
    await act(async () => answer.resolve(info(3, 3)));
    expect(result.current).toMatchObject({ pending: 0, dead: 0, stream: 'open', version: 'v7' });
  });

  it('reports a worker that cannot answer, and lets go of the table and the network on unmount', async () => {
    const table = fakeTable();
    const online = manualOnline(true);
    const missing = Object.assign(new Error('this browser has no service workers'), { code: 'no_service_worker' });
    const { result, unmount } = renderHook(() => useLiveStatus(table, { info: () => Promise.reject(missing), online }));
    await waitFor(() => expect(result.current.error).toBe(missing));
    expect(result.current).toMatchObject({ pending: undefined, stream: 'unknown' });
    expect(table.listenerCount()).toBe(1);
    expect(online.listeners.size).toBe(1);
    unmount();
    expect(table.listenerCount()).toBe(0);
    expect(online.listeners.size).toBe(0);
  });
});
