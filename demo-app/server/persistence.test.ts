import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MasterClient } from './client.js';
import { startMaster } from './server.js';
import { call, newTestDatabase, openSse, sseEvents, STORAGES } from './testkit.js';
import type { StorageKind } from './testkit.js';

const dir = mkdtempSync(join(tmpdir(), 'vantage-master-restart-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const admin = (m: { adminToken: string }) => ({ Authorization: `Bearer ${m.adminToken}` });

/** A new, empty store of this kind: a file name in the temp dir, or a database. */
async function newStore(storage: StorageKind, name: string): Promise<{ dbPath: string } | { pg: string }> {
  return storage === 'sqlite' ? { dbPath: join(dir, `${name}.sqlite`) } : { pg: await newTestDatabase() };
}

describe.each(STORAGES)('on %s', (storage) => {
  it('keeps rows and events across a restart on the same store', async () => {
    const store = await newStore(storage, 'master');
    const first = await startMaster({ ...store, seed: true });
    await call(first.url, 'PUT', '/api/products/d', { name: 'Danish', price: 9 });
    const committed = await call(first.url, 'PATCH', '/api/products/a', { price: 13 }, { 'Idempotency-Key': 'k-restart' });
    expect(committed.status).toBe(200);
    const before = (await call(first.url, 'GET', '/admin/stats', undefined, admin(first))).body.events as number;
    await first.close();

    const second = await startMaster(store);
    try {
      const rows = (await call(second.url, 'GET', '/api/products')).body.rows;
      expect(rows).toEqual([
        { id: 'a', name: 'Apple Pie', price: 13 },
        { id: 'b', name: 'Brioche', price: 8 },
        { id: 'c', name: 'Cinnamon Roll', price: 15 },
        { id: 'd', name: 'Danish', price: 9 },
      ]);
      expect((await call(second.url, 'GET', '/admin/stats', undefined, admin(second))).body.events).toBe(before);

      const replay = await call(second.url, 'PATCH', '/api/products/a', { price: 13 }, { 'Idempotency-Key': 'k-restart' });
      expect(replay.headers.get('idempotent-replayed')).toBe('true');
      expect(replay.body).toEqual(committed.body);

      const client = await openSse(`${second.url}/api/products/events`, { 'Last-Event-ID': String(before - 2) });
      const frames = await client.frames.until((f) => sseEvents(f).length === 2, 'the two logged changes');
      expect(sseEvents(frames).map((e) => [e.id, e.data.kind, e.data.id])).toEqual([
        [String(before - 1), 'inserted', 'd'],
        [String(before), 'updated', 'a'],
      ]);
      client.close();

      await call(second.url, 'PUT', '/api/products/e', {});
      expect((await call(second.url, 'GET', '/admin/stats', undefined, admin(second))).body.events).toBe(before + 1);
    } finally {
      await second.close();
    }
  });

  it('close() is idempotent', async () => {
    const master = await startMaster(await newStore(storage, 'twice'));
    await Promise.all([master.close(), master.close()]);
    await master.close();
  });

  it('keeps sessions across a restart, so clients stay signed in', async () => {
    const store = await newStore(storage, 'sessions');
    const auth = { users: { alice: 'pw' } };
    const first = await startMaster({ ...store, auth });
    const { client, session } = await new MasterClient(first.url).login('alice', 'pw');
    await client.call('PUT', '/api/notes/n', { text: 'kept' });
    await first.close();

    const second = await startMaster({ ...store, auth });
    try {
      const again = new MasterClient(second.url, undefined, session.token);
      expect((await again.call('GET', '/api/notes/n')).body).toEqual({ id: 'n', text: 'kept' });
      expect((await again.call('GET', '/auth/me')).body).toEqual({ user: 'alice', expiresAt: session.expiresAt });
    } finally {
      await second.close();
    }
  });

  it('signs out a session whose user is no longer in the users list after a restart', async () => {
    const store = await newStore(storage, 'removed-user');
    const first = await startMaster({ ...store, auth: { users: { alice: 'pw', bob: 'pw' } } });
    const { session } = await new MasterClient(first.url).login('bob', 'pw');
    await first.close();

    const second = await startMaster({ ...store, auth: { users: { alice: 'pw' } } });
    try {
      const reply = await new MasterClient(second.url, undefined, session.token).call('GET', '/api/notes');
      expect(reply.status).toBe(401);
      expect(reply.body.error.code).toBe('auth_required');
    } finally {
      await second.close();
    }
  });
});

it('SQLite: serves a file written before rows had owners: rows, order, event ids and keys are kept', async () => {
  const file = join(dir, 'before-owners.sqlite');
  // The schema as it was before auth mode.
  const old = new Database(file);
  old.exec(`
    CREATE TABLE rows (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, UNIQUE (tbl, id));
    CREATE INDEX rows_in_order ON rows (tbl, seq);
    CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, kind TEXT NOT NULL, row_id TEXT, at INTEGER NOT NULL);
    CREATE INDEX events_by_table ON events (tbl, id);
    CREATE TABLE idempotency_keys (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, client TEXT NOT NULL, status INTEGER NOT NULL,
      tbl TEXT NOT NULL, row_id TEXT, body TEXT, at INTEGER NOT NULL);
    CREATE INDEX idempotency_keys_by_age ON idempotency_keys (at);
    CREATE INDEX idempotency_keys_by_client ON idempotency_keys (client);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    INSERT INTO rows (tbl, id, body) VALUES ('products', 'z', '{"id":"z","n":1}'), ('products', 'a', '{"id":"a","n":2}');
    INSERT INTO events (tbl, kind, row_id, at) VALUES ('products', 'inserted', 'z', 0), ('products', 'inserted', 'a', 0);
  `);
  old.prepare('INSERT INTO idempotency_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run('old-key', 'fp', '127.0.0.1', 201, 'products', 'a', '{"id":"a","n":2}', Date.now());
  old.close();

  const master = await startMaster({ dbPath: file });
  try {
    expect((await call(master.url, 'GET', '/api/products')).body.rows).toEqual([{ id: 'z', n: 1 }, { id: 'a', n: 2 }]);
    expect((await call(master.url, 'GET', '/admin/stats', undefined, admin(master))).body.events).toBe(2);
    const client = await openSse(`${master.url}/api/products/events?since=1`);
    const frames = await client.frames.until((f) => sseEvents(f).length === 1, 'the logged change after 1');
    expect(sseEvents(frames).map((e) => [e.id, e.data.id])).toEqual([['2', 'a']]);
    client.close();
    // The old key still names its request: another request under it is refused.
    expect((await call(master.url, 'PUT', '/api/products/q', {}, { 'Idempotency-Key': 'old-key' })).status).toBe(422);
    expect((await call(master.url, 'PUT', '/api/products/b', { n: 3 })).status).toBe(200);
    expect((await call(master.url, 'GET', '/admin/stats', undefined, admin(master))).body.events).toBe(3);
  } finally {
    await master.close();
  }
});
