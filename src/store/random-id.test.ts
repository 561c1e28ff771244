import { describe, expect, it } from 'vitest';
import { orderedId, timePart } from './random-id.js';

describe('orderedId', () => {
  it('answers the prefix and 20 base64url characters, never the same twice across pool refills', () => {
    const ids = Array.from({ length: 2000 }, () => orderedId('tr_'));
    for (const id of ids) expect(id).toMatch(/^tr_[A-Za-z0-9_-]{20}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('sorts ids made in different milliseconds as their times, in plain string order', () => {
    const times = [
      0,
      1,
      63,
      64,
      65,
      4095,
      4096,
      1_764_900_000_000,
      1_764_900_000_001,
      1_764_900_003_600,
      2 ** 48 - 1,
    ];
    const ids = times.map((ms) => orderedId('tr_', ms));
    expect([...ids].sort()).toEqual(ids);
    expect(times.map(timePart).every((part) => part.length === 8)).toBe(true);
    expect(timePart(0)).toBe('--------');
    expect(timePart(2 ** 48 - 1)).toBe('zzzzzzzz');
  });

  it('keeps a commit’s ids together: one millisecond apart they share all but the last time characters', () => {
    const a = orderedId('tr_', 1_764_900_000_000);
    const b = orderedId('tr_', 1_764_900_000_001);
    expect(a.slice(0, 3 + 7)).toBe(b.slice(0, 3 + 7));
  });
});
