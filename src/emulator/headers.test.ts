import { describe, expect, it } from 'vitest';
import { parseDuration, parsePreferWait } from './headers.js';

describe('parseDuration (Cancel-After)', () => {
  it.each([
    ['30s', 30_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1h30m', 5_400_000],
    ['1.5s', 1500],
    ['250ms', 250],
    ['90', 90_000],
  ])('%s is %i ms', (text, ms) => {
    expect(parseDuration(text)).toEqual({ ok: true, value: ms });
  });

  it.each(['', 'soon', '10x', '-5s', '0s', '1h 30m', 's'])('rejects "%s"', (text) => {
    expect(parseDuration(text).ok).toBe(false);
  });
});

describe('parsePreferWait', () => {
  it('reads wait=N and a bare wait (60 s)', () => {
    expect(parsePreferWait('wait=5')).toEqual({ ok: true, value: 5 });
    expect(parsePreferWait('wait')).toEqual({ ok: true, value: 60 });
    expect(parsePreferWait('respond-async, wait=60')).toEqual({ ok: true, value: 60 });
  });

  it('ignores other preferences and a missing header', () => {
    expect(parsePreferWait(undefined)).toEqual({ ok: true, value: undefined });
    expect(parsePreferWait('return=minimal')).toEqual({ ok: true, value: undefined });
  });

  it.each(['wait=0', 'wait=61', 'wait=abc', 'wait=1.5'])('rejects %s', (text) => {
    expect(parsePreferWait(text).ok).toBe(false);
  });
});
