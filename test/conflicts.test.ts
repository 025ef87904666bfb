import { describe, expect, it } from 'vitest';
import { mergeFields } from '../src/index.js';

describe('mergeFields', () => {
  const base = { id: 'a', name: 'Apple Pie', price: 12, tags: ['x'], _version: 1 };

  it('keeps a field only one side changed, and the master value where both changed it (by default)', () => {
    const mine = { ...base, price: 13, tags: ['x'], name: 'Mine' };
    const theirs = { ...base, name: 'Theirs', stock: 4, _version: 2 };
    expect(mergeFields()(base, mine, theirs)).toEqual({ id: 'a', name: 'Theirs', price: 13, tags: ['x'], stock: 4 });
    expect(mergeFields({ prefer: 'client' })(base, mine, theirs)).toEqual({ id: 'a', name: 'Mine', price: 13, tags: ['x'], stock: 4 });
  });

  it('compares values by content, and a field removed on one side stays removed', () => {
    const mine = { id: 'a', name: 'Apple Pie', tags: ['x'] }; // price removed
    const theirs = { ...base, tags: ['x'], _version: 2 };
    expect(mergeFields()(base, mine, theirs)).toEqual({ id: 'a', name: 'Apple Pie', tags: ['x'] });
  });

  it('does not merge a delete field by field: the preferred side wins', () => {
    expect(mergeFields()(base, null, base)).toBe('server');
    expect(mergeFields({ prefer: 'client' })(base, base, null)).toBe('client');
  });
});
