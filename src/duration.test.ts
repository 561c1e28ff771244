import { describe, expect, it } from 'vitest';
import { parseDurationMs } from './duration.js';

describe('parseDurationMs', () => {
  it.each([
    ['7d', 7 * 86_400_000],
    ['12h', 43_200_000],
    ['90m', 5_400_000],
    ['30s', 30_000],
    ['500ms', 500],
    ['1d12h', 129_600_000],
    ['2w', 1_209_600_000],
    [' 1.5h ', 5_400_000],
    ['7D', 7 * 86_400_000],
  ])('%s', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', '7', 'd', '7 d', '-1d', '0d', '7x', '1d-', 'seven days'])('refuses "%s"', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
