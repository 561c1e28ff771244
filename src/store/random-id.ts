import { randomFillSync } from 'node:crypto';

/** Random bytes in an id: 96 bits, 16 base64url characters. */
const ID_BYTES = 12;
/** Ids drawn from one fill of the pool (one call into the CSPRNG instead of one per id). */
const POOL_IDS = 256;

const pool = Buffer.alloc(ID_BYTES * POOL_IDS);
let next = POOL_IDS;

/**
 * `prefix` and 12 random bytes in base64url: the ids of transitions and rejections, made in the
 * commit path once per row. Drawn from a pool filled 256 ids at a time, as `crypto.randomUUID` does:
 * the same randomness, without a call into the CSPRNG and a new buffer for every id.
 */
export function randomId(prefix: string): string {
  if (next === POOL_IDS) {
    randomFillSync(pool);
    next = 0;
  }
  const start = ID_BYTES * next++;
  return prefix + pool.toString('base64url', start, start + ID_BYTES);
}
