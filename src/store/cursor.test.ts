import { describe, expect, it } from 'vitest';
import {
  decodePredictionCursor,
  decodeSeqCursor,
  encodePredictionCursor,
  encodeSeqCursor,
} from './cursor.js';

describe('cursors', () => {
  it('round-trip prediction keysets, odd ids included', () => {
    for (const id of ['p1', 'a/b?c=d&e', 'ünïcode ☕', '"quoted"']) {
      const keyset = { lastReceivedAtMs: 1_795_786_687_123, id };
      const cursor = encodePredictionCursor(keyset);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodePredictionCursor(cursor)).toEqual(keyset);
    }
  });

  it('round-trip seqs', () => {
    for (const seq of [0, 1, 987_654_321]) expect(decodeSeqCursor(encodeSeqCursor(seq))).toBe(seq);
  });

  it('answer undefined for anything that is not one of ours', () => {
    const b64 = (text: string) => Buffer.from(text).toString('base64url');
    for (const bad of [
      '',
      '!!!',
      'abc',
      b64('[1]'),
      b64('[-1,"p"]'),
      b64('[1.5,"p"]'),
      b64('[1,""]'),
      b64('{"a":1}'),
    ]) {
      expect(decodePredictionCursor(bad)).toBeUndefined();
    }
    for (const bad of [
      '',
      '%%',
      b64('"1"'),
      b64('-3'),
      b64('1e400'),
      b64('[1]'),
      encodePredictionCursor({ lastReceivedAtMs: 1, id: 'p' }),
    ]) {
      expect(decodeSeqCursor(bad)).toBeUndefined();
    }
  });
});
