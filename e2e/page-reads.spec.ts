/**
 * Reads answered in the page (README, "Reads in the page"), in real Chromium
 * with the demo's service worker and IndexedDB: compared with the worker's own
 * answer (a raw bridge call, as the page client sends it with `pageReads:
 * false`) over the same cache, before and after a write in another tab, and
 * across a sign-in in another tab. Without the demo UI (`?ui=off`), so only
 * the test reads.
 */
import type { Page } from '@playwright/test';
import { PROTOCOL_VERSION } from '../src/bridge/protocol.js';
import type { ReadResult } from '../src/live-table.js';
import { expect, openDemo, recordEvents, test, waitForRecorded } from './fixtures.js';

/** The read every check makes: a page size the demo never uses, so its key is this test's alone. */
const REQ = { page: 1, ipp: 7 };
const KEY = 'products/page_1_ipp_7';

/** A call answered by the worker itself: the bridge message a client sends, without the page's own reads. */
function viaWorker(page: Page, body: Record<string, unknown>): Promise<unknown> {
  return page.evaluate(
    async ({ body, v }) => {
      const worker = (await navigator.serviceWorker.ready).active!;
      const { port1, port2 } = new MessageChannel();
      return new Promise((resolve, reject) => {
        port1.onmessage = ({ data }) => {
          if (data.kind === 'reply') resolve(data.value);
          else if (data.kind !== 'ack' && data.kind !== 'alive') reject(new Error(JSON.stringify(data)));
        };
        worker.postMessage({ ...body, vantageLive: v }, [port2]);
      });
    },
    { body, v: PROTOCOL_VERSION },
  );
}

const workerRead = (page: Page) => viaWorker(page, { kind: 'call', table: 'products', method: 'read', args: [REQ] }) as Promise<ReadResult>;

/**
 * `window.live.read(REQ)`, and whether the worker served it. The worker
 * broadcasts a `read` event for every read it serves, in order: once the
 * event of a later read of another key arrives, an event of this read would
 * have arrived before it.
 */
function pageRead(page: Page): Promise<{ result: ReadResult; byWorker: boolean }> {
  return page.evaluate(
    async ({ req, key, v }) => {
      const channel = new BroadcastChannel('vantage-live:events');
      let byWorker = false;
      let sentinelHeard = () => {};
      const sentinel = new Promise<void>((resolve) => (sentinelHeard = resolve));
      channel.onmessage = ({ data }) => {
        if (data.event?.type !== 'read') return;
        if (data.event.cacheKey === key) byWorker = true;
        if (data.event.cacheKey === 'products/page_2_ipp_3') sentinelHeard();
      };
      const result = await window.live.read(req);
      const worker = (await navigator.serviceWorker.ready).active!;
      worker.postMessage({ vantageLive: v, kind: 'call', table: 'products', method: 'read', args: [{ page: 2, ipp: 3 }] }, [new MessageChannel().port2]);
      await sentinel;
      channel.close();
      return { result: result as unknown as ReadResult, byWorker };
    },
    { req: REQ, key: KEY, v: PROTOCOL_VERSION },
  );
}

/** Read through the worker until it answers a fresh entry (a stale one is refetched behind, swr), then once more: the page's answer must be this. */
async function freshFromWorker(page: Page): Promise<ReadResult> {
  for (;;) {
    const refreshed = await recorded(page, { type: 'refreshed', cacheKey: KEY });
    const read = await workerRead(page);
    if (!read.stale) return workerRead(page);
    await waitForRecorded(page, { type: 'refreshed', cacheKey: KEY }, refreshed + 1);
  }
}

/** How many recorded events match `match` (a partial event). */
function recorded(page: Page, match: Record<string, unknown>): Promise<number> {
  return page.evaluate(
    (match) =>
      (window as unknown as { __events: Array<Record<string, unknown>> }).__events.filter((e) => Object.entries(match).every(([k, v]) => JSON.stringify(e[k]) === JSON.stringify(v)))
        .length,
    match,
  );
}

/** Read in the page until the page answers without the worker (its plan is in and its databases open). */
async function untilPageAnswers(page: Page): Promise<ReadResult> {
  for (;;) {
    const { result, byWorker } = await pageRead(page);
    if (!byWorker) return result;
  }
}

test('a read answered in the page is the worker\'s answer, before and after a write in another tab, queued and applied', async ({ context, master }) => {
  const a = await openDemo(context, `${master.url}/?ui=off`);
  const b = await openDemo(context, `${master.url}/?ui=off`);
  await recordEvents(a);
  await freshFromWorker(a);
  const first = await untilPageAnswers(a);
  expect(first).toEqual(await workerRead(a));
  expect(first).toMatchObject({ cacheKey: KEY, source: 'cache', stale: false, revalidating: false, pendingIds: [], conflicts: [] });

  // A tab that never read it answers it from IndexedDB at once, the same.
  const c = await openDemo(context, `${master.url}/?ui=off`);
  expect(await untilPageAnswers(c)).toEqual(first);

  // Another tab writes, offline: queued. Once this tab heard it, both paths show the pending write.
  const id = first.rows[0]![0];
  await context.setOffline(true);
  await b.evaluate((id) => window.live.patch(id, { price: 4242 }), id);
  await waitForRecorded(a, { type: 'queued' });
  const pending = await pageRead(a);
  expect(pending.result).toEqual(await workerRead(a));
  expect(pending.result.pendingIds).toEqual([id]);
  expect(pending.result.rows.find(([rowId]) => rowId === id)![1].price).toBe(4242);
  // Kept in memory now, and still the worker's answer.
  expect(await untilPageAnswers(a)).toEqual(await workerRead(a));

  // Online again: applied, invalidated by the write and by the change feed; fresh rows, the same on both paths.
  const [emptied, fed] = [await recorded(a, { type: 'queue', pending: 0, dead: 0 }), await recorded(a, { type: 'invalidated', reason: 'event' })];
  await context.setOffline(false);
  await waitForRecorded(a, { type: 'queue', pending: 0, dead: 0 }, emptied + 1);
  await waitForRecorded(a, { type: 'invalidated', reason: 'event' }, fed + 1);
  const settled = await freshFromWorker(a);
  expect(settled.pendingIds).toEqual([]);
  expect(settled.rows.find(([rowId]) => rowId === id)![1].price).toBe(4242);
  expect(await untilPageAnswers(a)).toEqual(settled);
  expect(await untilPageAnswers(c)).toEqual(settled);
});

test("after another tab signs someone else in, the page never answers the last user's rows", async ({ context, master }) => {
  const a = await openDemo(context, `${master.url}/?ui=off`);
  const b = await openDemo(context, `${master.url}/?ui=off`);
  await recordEvents(a);
  await freshFromWorker(a);
  await untilPageAnswers(a);
  // Listening in tab A before tab B signs in (an evaluate not awaited could start listening after the broadcast).
  await a.evaluate(() => {
    (window as unknown as { __told: Promise<string | undefined> }).__told = new Promise((resolve) => {
      const channel = new BroadcastChannel('vantage-live:events');
      channel.onmessage = ({ data }) => 'session' in data && (channel.close(), resolve(data.session.user));
    });
  });
  await viaWorker(b, { kind: 'sign-in', user: 'another' });
  expect(await a.evaluate(() => (window as unknown as { __told: Promise<string | undefined> }).__told)).toBe('another');
  // Their cache is empty: the read goes to the master, not to what this tab kept of the guest's.
  const { result, byWorker } = await pageRead(a);
  expect(byWorker).toBe(true);
  expect(result.source).toBe('master');
});
