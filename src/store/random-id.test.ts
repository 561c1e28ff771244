import { describe, expect, it } from 'vitest';
import { randomId } from './random-id.js';

describe('randomId', () => {
  it('answers the prefix and 16 base64url characters, never the same twice across pool refills', () => {
    const ids = Array.from({ length: 2000 }, () => randomId('tr_'));
    for (const id of ids) expect(id).toMatch(/^tr_[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
