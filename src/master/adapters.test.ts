import { describe, expect, it } from 'vitest';
import { jsonServerAdapter, postgrestAdapter, vantageAdapter, type RestAnswer } from './adapters.js';

const answer = (status: number, text: string, headers: Record<string, string> = {}): RestAnswer => {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status, text, json, headers: new Headers(headers) };
};

describe('the adapters spell requests their backend’s way', () => {
  it('vantage: sends the idempotency key, and a known row version as If-Match; reads ETag', () => {
    expect(vantageAdapter.patch('a b', { price: 1 }, 'id', { idempotencyKey: 'k1', version: '"v3"' })).toEqual({
      method: 'PATCH',
      path: '/a%20b',
      body: { price: 1 },
      headers: { 'idempotency-key': 'k1', 'if-match': '"v3"' },
    });
    expect(vantageAdapter.replace('a', { id: 'a' }, 'id', {}).headers).toEqual({});
    expect(vantageAdapter.readVersion?.(answer(200, '{}', { etag: '"v4"' }))).toBe('"v4"');
    expect(vantageAdapter.readFailure(answer(409, '{"error":{"code":"idempotency_key_in_progress","message":"busy"}}'))).toMatchObject({ transient: true });
  });

  it('json-server: _page/_limit and X-Total-Count; a 500 "duplicate id" is a 409; no keys sent', () => {
    expect(jsonServerAdapter.list({ page: 3, ipp: 20 }, 'id').path).toBe('?_page=3&_limit=20');
    expect(jsonServerAdapter.readPage(answer(200, '[{"id":"a"}]', { 'x-total-count': '41' }))).toEqual({ rows: [{ id: 'a' }], total: 41 });
    expect(jsonServerAdapter.insert({ id: 'a' }, { idempotencyKey: 'k' }).headers).toBeUndefined();
    expect(jsonServerAdapter.readFailure(answer(500, 'Error: Insert failed, duplicate id\n    at ...'))).toMatchObject({ status: 409, code: 'duplicate_id' });
  });

  it('PostgREST: a row is a filter, the total is in Content-Range, a write asks for its representation', () => {
    expect(postgrestAdapter.list({ page: 3, ipp: 20 }, 'sku')).toEqual({ method: 'GET', path: '?order=sku.asc&limit=20&offset=40', headers: { prefer: 'count=exact' } });
    expect(postgrestAdapter.get('a,b.c', 'id').path).toBe('?id=eq.a%2Cb.c');
    expect(postgrestAdapter.readPage(answer(206, '[]', { 'content-range': '*/300' })).total).toBe(300);
    expect(postgrestAdapter.patch('a', { price: 1 }, 'id', {}).headers).toEqual({ prefer: 'return=representation' });
    expect(postgrestAdapter.readRow(answer(200, '[{"id":"a"}]'))).toEqual({ id: 'a' });
    expect(postgrestAdapter.readRow(answer(200, '[]'))).toBeUndefined();
    expect(postgrestAdapter.readFailure(answer(409, '{"code":"23505","message":"duplicate key","details":"Key (id)=(a) already exists.","hint":null}'))).toEqual({
      code: '23505',
      message: 'duplicate key (Key (id)=(a) already exists.)',
    });
  });

  it('none but vantage claims idempotency keys', () => {
    expect([vantageAdapter, jsonServerAdapter, postgrestAdapter].map((a) => [a.name, a.delivery.idempotencyKeys])).toEqual([
      ['vantage', true],
      ['json-server', false],
      ['postgrest', false],
    ]);
  });
});
