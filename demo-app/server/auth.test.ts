import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MasterClient } from './client.js';
import { SESSION_ENDED_CLOSE_CODE } from './socket.js';
import { call, openSse, openWs, sseEvents, STORAGES, startTestMaster, wsRefusal, wsUrl } from './testkit.js';
import type { SseClient, SseFrame, TestMaster, WsClient } from './testkit.js';

describe.each(STORAGES)('on %s', (storage) => {
  const TTL_MS = 60_000;
  const USERS = { alice: 'alice-pw', bob: 'bob-pw:with:colons' };

  // The master's clock: sessions expire when the test says so, not after a sleep.
  let clock = 1_700_000_000_000;
  let master: TestMaster;
  let base: string;
  const open: Array<SseClient | WsClient> = [];

  beforeAll(async () => {
    master = await startTestMaster({ storage, auth: { users: USERS, sessionTtlMs: TTL_MS }, now: () => clock, heartbeatMs: 50 });
    base = master.url;
  });
  afterAll(async () => {
    for (const client of open) client.close();
    await master.dispose();
  });

  async function login(user: keyof typeof USERS): Promise<{ token: string; bearer: Record<string, string>; client: MasterClient }> {
    const { client, session } = await new MasterClient(base, master.adminToken).login(user, USERS[user]);
    return { token: session.token, bearer: { Authorization: `Bearer ${session.token}` }, client };
  }

  async function sse(path: string, headers: Record<string, string> = {}): Promise<SseClient> {
    const client = await openSse(`${base}${path}`, headers);
    open.push(client);
    return client;
  }

  async function ws(table: string, headers: Record<string, string>, query = ''): Promise<WsClient> {
    const client = await openWs(wsUrl(base, table, query), headers);
    open.push(client);
    return client;
  }

  const changeIds = (frames: SseFrame[]) => sseEvents(frames).filter((e) => e.event === 'change').map((e) => e.data.id);
  const wsChangeIds = (messages: any[]) => messages.filter((m) => m.type === 'change').map((m) => m.id);

  /** Every kind of /api request, so "all of them need a session" is checked route by route. */
  const API_REQUESTS: Array<[string, string, unknown?]> = [
    ['GET', '/api/guarded'],
    ['GET', '/api/guarded/a'],
    ['POST', '/api/guarded', { id: 'a' }],
    ['PUT', '/api/guarded/a', {}],
    ['PATCH', '/api/guarded/a', { v: 1 }],
    ['DELETE', '/api/guarded/a'],
    ['DELETE', '/api/guarded'],
  ];

  async function expectAuthRequired(headers: Record<string, string>, query = ''): Promise<void> {
    for (const [method, path, body] of API_REQUESTS) {
      const reply = await call(base, method, path, body, headers);
      expect(reply.status, `${method} ${path}`).toBe(401);
      expect(reply.body.error.code, `${method} ${path}`).toBe('auth_required');
      expect(reply.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    const feed = await sse(`/api/guarded/events${query}`, headers);
    expect(feed.status).toBe(401);
    expect(await wsRefusal(wsUrl(base, 'guarded', query), headers)).toBe(401);
  }

  it('login answers a bearer token and sets an HttpOnly session cookie; each authorizes on its own', async () => {
    const reply = await call(base, 'POST', '/auth/login', { user: 'alice', password: USERS.alice });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ user: 'alice', token: expect.any(String), expiresAt: clock + TTL_MS });
    const token: string = reply.body.token;
    const cookie = reply.headers.get('set-cookie') ?? '';
    expect(cookie).toBe(`vl_session=${token}; HttpOnly; SameSite=Lax; Path=/; Max-Age=${TTL_MS / 1000}`);

    const byCookie = { Cookie: `theme=dark; vl_session=${token}` };
    const byBearer = { Authorization: `Bearer ${token}` };
    for (const headers of [byCookie, byBearer]) {
      expect((await call(base, 'PUT', '/api/login_t/x', { v: 1 }, headers)).status).toBe(200);
      expect((await call(base, 'GET', '/api/login_t/x', undefined, headers)).body).toEqual({ id: 'x', v: 1 });
      expect((await call(base, 'GET', '/auth/me', undefined, headers)).body).toEqual({ user: 'alice', expiresAt: clock + TTL_MS });
      const feed = await sse('/api/login_t/events', headers);
      expect(feed.status).toBe(200);
      await ws('login_t', headers);
    }
  });

  it('a wrong password or an unknown user is 401 bad_credentials, and sets no cookie', async () => {
    for (const body of [{ user: 'alice', password: 'nope' }, { user: 'alice', password: USERS.bob }, { user: 'mallory', password: 'x' }]) {
      const reply = await call(base, 'POST', '/auth/login', body);
      expect(reply.status, JSON.stringify(body)).toBe(401);
      expect(reply.body.error.code).toBe('bad_credentials');
      expect(reply.headers.get('set-cookie')).toBeNull();
    }
    expect((await call(base, 'POST', '/auth/login', { user: 'alice' })).body.error.code).toBe('invalid_body');
  });

  it('without a session, reads, writes, the SSE feed and the WebSocket upgrade are all 401 auth_required', async () => {
    await expectAuthRequired({});
    await expectAuthRequired({ Authorization: 'Bearer not-a-session' });
    await expectAuthRequired({ Cookie: 'vl_session=not-a-session' });
    // The admin token is not a session.
    await expectAuthRequired({ Authorization: `Bearer ${master.adminToken}` });
  });

  it('takes the session as ?token= on the change feed only (EventSource cannot set headers)', async () => {
    const { token } = await login('alice');
    expect((await sse(`/api/query_t/events?token=${token}`)).status).toBe(200);
    await ws('query_t', {}, `?token=${token}`);
    expect((await call(base, 'GET', `/api/query_t?token=${token}`)).status).toBe(401);
    expect((await call(base, 'PUT', `/api/query_t/x?token=${token}`, {})).status).toBe(401);
  });

  it('a session expires sessionTtlMs after login: reads, writes, feeds and /auth/me are then 401', async () => {
    const { token, bearer } = await login('alice');
    clock += TTL_MS - 1;
    expect((await call(base, 'GET', '/api/expiry_t', undefined, bearer)).status).toBe(200);
    clock += 1;
    await expectAuthRequired(bearer, `?token=${token}`);
    await expectAuthRequired({ Cookie: `vl_session=${token}` });
    expect((await call(base, 'GET', '/auth/me', undefined, bearer)).body.error.code).toBe('auth_required');
  });

  it('an open feed ends at its next heartbeat once its session has expired', async () => {
    const { bearer } = await login('alice');
    const feed = await sse('/api/ending_t/events', bearer);
    const socket = await ws('ending_t', bearer);
    clock += TTL_MS;
    await feed.ended;
    expect(await socket.closed).toBe(SESSION_ENDED_CLOSE_CODE);
  });

  it('logout ends the session and clears the cookie; an open feed of it ends too', async () => {
    const { bearer } = await login('alice');
    const socket = await ws('logout_t', bearer);
    const out = await call(base, 'POST', '/auth/logout', undefined, bearer);
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/^vl_session=; .*Max-Age=0/);
    expect((await call(base, 'GET', '/api/logout_t', undefined, bearer)).status).toBe(401);
    expect(await socket.closed).toBe(SESSION_ENDED_CLOSE_CODE);
  });

  it("Alice's rows are invisible to Bob: list, get, patch, replace, delete and delete-all touch only his own", async () => {
    const alice = (await login('alice')).client;
    const bob = (await login('bob')).client;
    expect((await alice.call('PUT', '/api/notes/a1', { text: 'alice private' })).status).toBe(200);

    expect((await bob.call('GET', '/api/notes')).body).toEqual({ rows: [], page: 1, ipp: 50, total: 0 });
    expect((await bob.call('GET', '/api/notes/a1')).status).toBe(404);
    expect((await bob.call('PATCH', '/api/notes/a1', { text: 'bob was here' })).status).toBe(404);
    expect((await bob.call('DELETE', '/api/notes/a1')).status).toBe(404);
    expect((await bob.call('DELETE', '/api/notes')).status).toBe(204);
    // Ids are per user: Bob's a1 is another row, and neither learns of the other's.
    expect((await bob.call('PUT', '/api/notes/a1', { text: 'bob own' })).status).toBe(200);
    expect((await bob.call('POST', '/api/notes', { id: 'b1', text: 'bob two' })).status).toBe(201);

    expect(await alice.rows('notes')).toEqual([{ id: 'a1', text: 'alice private' }]);
    expect(await bob.rows('notes')).toEqual([
      { id: 'a1', text: 'bob own' },
      { id: 'b1', text: 'bob two' },
    ]);
    expect((await alice.call('DELETE', '/api/notes')).status).toBe(204);
    expect(await bob.rows('notes')).toHaveLength(2);
  });

  it("Bob's feeds (SSE and WebSocket, live and on resume) never carry Alice's events", async () => {
    const alice = (await login('alice')).client;
    const { client: bob, bearer } = await login('bob');
    const bobSse = await sse('/api/feed_t/events?since=0', bearer);
    const bobWs = await ws('feed_t', bearer, '?since=0');

    await alice.call('PUT', '/api/feed_t/alice1', {});
    await bob.call('PUT', '/api/feed_t/bob1', {});
    await alice.call('PATCH', '/api/feed_t/alice1', { v: 2 });
    await alice.call('DELETE', '/api/feed_t');
    await bob.call('PUT', '/api/feed_t/bob2', {});

    const done = (ids: unknown[]) => ids.includes('bob2');
    expect(changeIds(await bobSse.frames.until((f) => done(changeIds(f)), "Bob's second change"))).toEqual(['bob1', 'bob2']);
    expect(wsChangeIds(await bobWs.messages.until((m) => done(wsChangeIds(m)), "Bob's second change"))).toEqual(['bob1', 'bob2']);
    // Alice's delete-all is a `changed` without an id: it must not reach Bob either.
    expect(sseEvents(bobSse.frames.items).filter((e) => e.event === 'change' && e.data.id === undefined)).toEqual([]);

    // A resume replays Bob's backlog only; ids skip Alice's events.
    const resumed = await sse('/api/feed_t/events', { ...bearer, 'Last-Event-ID': '0' });
    await bob.call('PUT', '/api/feed_t/bob3', {});
    const replay = sseEvents(await resumed.frames.until((f) => changeIds(f).includes('bob3'), 'the live change after the backlog'));
    expect(changeIds(replay)).toEqual(['bob1', 'bob2', 'bob3']);
    const ids = replay.map((e) => Number(e.id));
    expect(ids[1]! - ids[0]!).toBeGreaterThan(1);
  });

  it('the same Idempotency-Key from Alice and Bob is two writes, each replayed only to its sender', async () => {
    const alice = (await login('alice')).client;
    const bob = (await login('bob')).client;
    const key = { 'Idempotency-Key': 'shared-key-1' };
    const first = await alice.call('POST', '/api/idem_t', { name: 'from alice' }, key);
    expect(first.status).toBe(201);
    const bobs = await bob.call('POST', '/api/idem_t', { name: 'from bob' }, key);
    expect(bobs.status).toBe(201);
    expect(bobs.headers.get('idempotent-replayed')).toBeNull();
    expect(bobs.body.name).toBe('from bob');

    const aliceAgain = await alice.call('POST', '/api/idem_t', { name: 'from alice' }, key);
    expect(aliceAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(aliceAgain.body).toEqual(first.body);
    const bobAgain = await bob.call('POST', '/api/idem_t', { name: 'from bob' }, key);
    expect(bobAgain.headers.get('idempotent-replayed')).toBe('true');
    expect(bobAgain.body).toEqual(bobs.body);
    expect(await alice.rows('idem_t')).toEqual([first.body]);
    expect(await bob.rows('idem_t')).toEqual([bobs.body]);
  });

  it('refuses cookie-authenticated writes and logins sent by a page of a foreign origin', async () => {
    const { token } = await login('alice');
    const foreign = { Origin: 'http://evil.example', Cookie: `vl_session=${token}` };
    const write = await call(base, 'PUT', '/api/csrf_t/x', {}, foreign);
    expect(write.status).toBe(403);
    expect(write.body.error.code).toBe('forbidden_origin');
    expect((await call(base, 'POST', '/auth/login', { user: 'bob', password: USERS.bob }, { Origin: 'http://evil.example' })).status).toBe(403);
    expect((await call(base, 'PUT', '/api/csrf_t/x', {}, { ...foreign, Origin: base })).status).toBe(200);
  });

  it('keeps /admin on its admin token, and answers CORS preflights without a session', async () => {
    expect((await call(base, 'GET', '/admin/stats')).status).toBe(200);
    expect((await call(base, 'GET', '/admin/stats', undefined, { Authorization: 'Bearer nope' })).status).toBe(401);
    expect((await call(base, 'OPTIONS', '/api/guarded')).status).toBe(204);
  });

  it('seeds the products of every user with seed: true', async () => {
    const seeded = await startTestMaster({ storage, auth: { users: USERS }, seed: true });
    try {
      for (const user of ['alice', 'bob'] as const) {
        const { client } = await new MasterClient(seeded.url).login(user, USERS[user]);
        expect((await client.rows('products')).map((r) => r.id)).toEqual(['a', 'b', 'c']);
      }
    } finally {
      await seeded.dispose();
    }
  });

  it('without auth, /auth/* is 404 auth_disabled and /api stays open', async () => {
    const openMaster = await startTestMaster({ storage });
    try {
      const reply = await call(openMaster.url, 'POST', '/auth/login', { user: 'alice', password: 'x' });
      expect(reply.status).toBe(404);
      expect(reply.body.error.code).toBe('auth_disabled');
      expect((await call(openMaster.url, 'GET', '/auth/me')).body.error.code).toBe('auth_disabled');
      expect((await call(openMaster.url, 'PUT', '/api/open_t/x', {})).status).toBe(200);
    } finally {
      await openMaster.dispose();
    }
  });

  it('refuses to start with an unusable users list', async () => {
    await expect(startTestMaster({ storage, auth: { users: {} } })).rejects.toThrow(/at least one user/);
    await expect(startTestMaster({ storage, auth: { users: { 'bad name': 'x' } } })).rejects.toThrow(/user name/);
    await expect(startTestMaster({ storage, auth: { users: { alice: '' } } })).rejects.toThrow(/empty password/);
  });
});
