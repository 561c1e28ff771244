import { describe, expect, it } from 'vitest';
import { backoffDelay, withJitter } from './backoff.js';

describe('backoffDelay', () => {
  it('doubles from the base per attempt, up to the cap', () => {
    const delays = [1, 2, 3, 4, 5, 6].map((attempt) => backoffDelay({ baseMs: 250, maxMs: 5000, attempt }));
    expect(delays).toEqual([250, 500, 1000, 2000, 4000, 5000]);
    expect(backoffDelay({ baseMs: 250, attempt: 0 })).toBe(250);
    expect(backoffDelay({ baseMs: 1000, attempt: 11 })).toBe(1000 * 1024);
  });

  it('stops doubling before the product overflows', () => {
    expect(backoffDelay({ baseMs: 5000, maxMs: 300_000, attempt: 10_000 })).toBe(300_000);
    expect(Number.isFinite(backoffDelay({ baseMs: 5000, attempt: 10_000 }))).toBe(true);
  });

  it('jitters either way by the share given, with the random source given', () => {
    expect(backoffDelay({ baseMs: 1000, attempt: 2, jitter: 0.2, random: () => 0 })).toBe(1600);
    expect(backoffDelay({ baseMs: 1000, attempt: 2, jitter: 0.2, random: () => 0.5 })).toBe(2000);
    expect(withJitter(1000, 0.2, () => 0.999_999)).toBeCloseTo(1200, 3);
    for (let i = 0; i < 100; i++) {
      const delay = withJitter(1000, 0.2);
      expect(delay).toBeGreaterThanOrEqual(800);
      expect(delay).toBeLessThan(1200);
    }
  });
});
