/**
 * The fetch-based SSE transport against the reference master in --auth mode:
 * the bearer token travels as an Authorization header (never in the URL), a
 * resume sends Last-Event-ID, and a refused token waits in auth-required
 * instead of reconnecting in a loop (issue 12).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it, vi } from 'vitest';
import { MasterClient } from '../../demo-app/server/client.js';
import { startMaster, type RunningMaster } from '../../demo-app/server/server.js';
import { FetchSseLiveStream, LiveTable, MemCache, RestTable, type LiveEvent, type LiveTableEvent, type StreamState } from '../../src/index.js';
import { ManualEnv } from '../support/manual-env.js';

const USERS = { alice: 'pw-alice' };
const SLOW = { timeout: 10_000, interval: 10 };
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function authMaster(dbPath: string, port = 0, seed = true): Promise<RunningMaster> {
  const master = await startMaster({ dbPath, port, seed, heartbeatMs: 1_000, auth: { users: USERS, sessionTtlMs: 60 * 60_000 } });
  cleanups.push(() => master.close());
  return master;
}

function recordingFetch() {
  const sent: Array<{ url: string; authorization?: string; lastEventId?: string }> = [];
  const fetchImpl: typeof fetch = (input, init) => {
    const headers = new Headers(init?.headers);
    sent.push({ url: String(input), authorization: headers.get('authorization') ?? undefined, lastEventId: headers.get('last-event-id') ?? undefined });
    return fetch(input, init);
  };
  return { sent, fetch: fetchImpl };
}

it('sends the token as a header, not in the URL, and resumes after a restart with Last-Event-ID', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vl-fetch-sse-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const dbPath = join(dir, 'master.sqlite');
  let master = await authMaster(dbPath);
  const { port } = master;
  const token = (await new MasterClient(master.url).login('alice', USERS.alice)).session.token;
  const alice = () => new MasterClient(`http://127.0.0.1:${port}`, undefined, token);
  const net = recordingFetch();
  const stream = new FetchSseLiveStream(`${master.url}/api/products/events`, { fetch: net.fetch, headers: () => ({ authorization: `Bearer ${token}` }), backoff: { baseMs: 20, capMs: 200 } });
  const events: LiveEvent[] = [];
  cleanups.push(() => stream.close());
  stream.subscribe((e) => events.push(e));
  await vi.waitFor(() => expect(events.map((e) => e.kind)).toEqual(['reset']), SLOW);

  await alice().call('PATCH', '/api/products/a', { price: 20 });
  await vi.waitFor(() => expect(events.slice(1)).toMatchObject([{ kind: 'updated', id: 'a' }]), SLOW);
  const seen = events[1]!.eventId!;

  // The master goes away; while it is down, two changes are made; it comes back on the same port.
  await master.close();
  await vi.waitFor(() => expect(stream.state).toBe('connecting'), SLOW);
  const other = await authMaster(dbPath, 0, false);
  await new MasterClient(other.url, undefined, token).call('PATCH', '/api/products/b', { price: 21 });
  await new MasterClient(other.url, undefined, token).call('DELETE', '/api/products/c');
  await other.close();
  master = await authMaster(dbPath, port, false);

  await vi.waitFor(() => expect(events.slice(2).map((e) => `${e.kind} ${'id' in e ? e.id : ''}`)).toEqual(['updated b', 'deleted c']), SLOW);
  expect(stream.state).toBe('open');
  const url = `http://127.0.0.1:${port}/api/products/events`;
  expect(net.sent[0]).toEqual({ url, authorization: `Bearer ${token}`, lastEventId: undefined });
  const resumed = net.sent.at(-1)!;
  expect(resumed).toEqual({ url, authorization: `Bearer ${token}`, lastEventId: seen });
  for (const s of net.sent) expect(s.url).toBe(url); // no token, no since: nothing in the URL
});

it('a refused token puts the stream and its table in auth-required without reconnecting; new credentials resume it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vl-fetch-sse-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  const master = await authMaster(join(dir, 'master.sqlite'));
  let token = 'not-a-session';
  const net = recordingFetch();
  const env = new ManualEnv();
  const stream = new FetchSseLiveStream(`${master.url}/api/products/events`, { fetch: net.fetch, headers: () => ({ authorization: `Bearer ${token}` }), env });
  const table = new LiveTable(new RestTable(`${master.url}/api`, 'products', { headers: () => ({ authorization: `Bearer ${token}` }) }), 'products', new MemCache(), { stream, env });
  cleanups.push(() => (table.close(), stream.close()));
  const states: StreamState[] = [];
  stream.onState((s) => states.push(s));
  const heard: LiveTableEvent[] = [];
  table.subscribe((e) => heard.push(e));

  await vi.waitFor(() => expect(stream.state).toBe('auth-required'), SLOW);
  expect(heard).toContainEqual({ type: 'auth', state: 'required' });
  expect(table.authRequired).toBe(true);
  // Minutes later, nothing has tried again: no timer waits, one request was made.
  env.advance(10 * 60_000);
  expect(env.nextTimerAt).toBeUndefined();
  expect(net.sent).toHaveLength(1);

  token = (await new MasterClient(master.url).login('alice', USERS.alice)).session.token;
  await table.credentialsChanged();
  await vi.waitFor(() => expect(stream.state).toBe('open'), SLOW);
  expect(table.authRequired).toBe(false);
  expect(net.sent).toHaveLength(2);
  expect(states).toEqual(['auth-required', 'connecting', 'open']); // subscribed once the table had connected it
});
