/** How long to wait before retry number `attempt` (1 for the first): doubling from `baseMs`. */
export interface BackoffOptions {
  /** The wait before the first retry. */
  baseMs: number;
  /** The longest wait (none when absent). */
  maxMs?: number;
  /** 1 for the first retry; below 1 counts as 1. */
  attempt: number;
  /** The share of the wait drawn at random either way: 0.2 waits 80–120 % of it. None when absent. */
  jitter?: number;
  /** In [0, 1) (`Math.random` when absent). */
  random?: () => number;
}

/** Doublings stop here: 2 ** 30 already passes any sane cap, and the product never overflows. */
const MAX_DOUBLINGS = 30;

/** `baseMs`, `2 × baseMs`, `4 × baseMs`… capped at `maxMs`, then jittered. Not rounded. */
export function backoffDelay(options: BackoffOptions): number {
  const doublings = Math.min(Math.max(0, options.attempt - 1), MAX_DOUBLINGS);
  const delay = Math.min(options.maxMs ?? Infinity, options.baseMs * 2 ** doublings);
  return options.jitter === undefined ? delay : withJitter(delay, options.jitter, options.random);
}

/** `ms` moved up or down by up to `jitter` of itself, at random: 0.2 gives 80–120 % of it. */
export function withJitter(ms: number, jitter: number, random: () => number = Math.random): number {
  return ms * (1 - jitter + 2 * jitter * random());
}
