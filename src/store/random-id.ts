import { randomFillSync } from 'node:crypto';

/** Random bytes in an id: 72 bits, 12 base64url characters. */
const RANDOM_BYTES = 9;
/** Ids drawn from one fill of the pool (one call into the CSPRNG instead of one per id). */
const POOL_IDS = 256;
/** Base64url's 64 characters in ASCII order, so that a later time sorts after an earlier one. */
const SORTABLE = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';
/** Characters of the time part: 48 bits of milliseconds, enough until the year 10889. */
const TIME_CHARS = 8;

const pool = Buffer.alloc(RANDOM_BYTES * POOL_IDS);
let next = POOL_IDS;
let lastMs = -1;
let lastTime = '';

/** The time part of an id made at `ms`: fixed width, sorting as the times do. */
export function timePart(ms: number): string {
  let rest = Math.max(0, Math.floor(ms));
  let text = '';
  for (let i = 0; i < TIME_CHARS; i++) {
    text = SORTABLE[rest % 64]! + text;
    rest = Math.floor(rest / 64);
  }
  return text;
}

/**
 * `prefix`, the time in milliseconds (8 characters that sort as the times do) and 9 random bytes in
 * base64url (72 bits): the ids of transitions and rejections, made in the commit path once per row.
 *
 * Time first, so that the rows of one commit land side by side in the unique index on `id` instead of
 * on as many random pages: a random id dirtied a page of that index per row, written to the WAL at
 * every commit (docs/benchmarks.md). The order is only for the index; ids made on two machines, or in
 * the same millisecond, are ordered by nothing but chance, and nothing reads order from them (`seq`
 * orders rows). The random bytes come from a pool filled 256 ids at a time, as `crypto.randomUUID`
 * does: the same randomness, without a call into the CSPRNG and a new buffer for every id.
 */
export function orderedId(prefix: string, nowMs: number = Date.now()): string {
  if (nowMs !== lastMs) {
    lastMs = nowMs;
    lastTime = timePart(nowMs);
  }
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = RANDOM_BYTES * next++;
  return prefix + lastTime + pool.toString('base64url', start, start + RANDOM_BYTES);
}
