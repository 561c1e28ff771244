import type { PredictionKeyset } from './types.js';

/**
 * Opaque cursors for the API's `next_cursor`: base64url JSON of a page's last keyset. Decoding returns
 * `undefined` for anything that is not one of ours (the API answers 400 `invalid_query`).
 */

export function encodePredictionCursor(keyset: PredictionKeyset): string {
  return encode([keyset.lastReceivedAtMs, keyset.id]);
}

export function decodePredictionCursor(cursor: string): PredictionKeyset | undefined {
  const value = decode(cursor);
  if (!Array.isArray(value) || value.length !== 2) return undefined;
  const [lastReceivedAtMs, id] = value as unknown[];
  if (!isSafeNonNegativeInteger(lastReceivedAtMs) || typeof id !== 'string' || id === '') return undefined;
  return { lastReceivedAtMs, id };
}

export function encodeSeqCursor(seq: number): string {
  return encode(seq);
}

export function decodeSeqCursor(cursor: string): number | undefined {
  const value = decode(cursor);
  return isSafeNonNegativeInteger(value) ? value : undefined;
}

function encode(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

function decode(cursor: string): unknown {
  if (cursor === '' || !/^[A-Za-z0-9_-]+$/.test(cursor)) return undefined;
  try {
    return JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isSafeNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
