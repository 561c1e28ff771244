import { describe, expect, it } from 'vitest';
import { InvalidQueryError, parsePredictionQuery } from './api-query.js';

const bounds = (query: Record<string, string>) => {
  const q = parsePredictionQuery(query);
  return { since: q.sinceMs, until: q.untilMs };
};

describe('since / until', () => {
  it('reads RFC 3339 with offsets and fractions', () => {
    expect(bounds({ since: '2026-11-27T13:38:07.123Z' }).since).toBe(Date.parse('2026-11-27T13:38:07.123Z'));
    expect(bounds({ since: '2026-11-27T14:38:07+01:00' }).since).toBe(Date.parse('2026-11-27T13:38:07Z'));
    expect(bounds({ until: '2026-11-27t13:38:07.5z' }).until).toBe(Date.parse('2026-11-27T13:38:07.500Z'));
  });

  it('keeps sub-millisecond bounds inclusive and exact', () => {
    const at = Date.parse('2026-11-27T13:38:21.273Z');
    expect(bounds({ since: '2026-11-27T13:38:21.2731Z' }).since).toBe(at + 1);
    expect(bounds({ since: '2026-11-27T13:38:21.2730Z' }).since).toBe(at);
    expect(bounds({ until: '2026-11-27T13:38:21.2739Z' }).until).toBe(at);
  });

  it('refuses impossible dates instead of rolling them over', () => {
    for (const text of [
      '2026-02-30T00:00:00Z',
      '2026-11-27T24:00:00Z',
      '2026-13-01T00:00:00Z',
      '2026-11-27T10:61:00Z',
      '2026-11-27',
      'yesterday',
      '2026-11-27T10:00:00+25:00',
    ]) {
      expect(() => parsePredictionQuery({ until: text }), text).toThrow(InvalidQueryError);
    }
  });
});
