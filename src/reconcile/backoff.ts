import { backoffDelay } from '../backoff.js';

/** Reconcile's timings (CONTRACT §11). Waits marked "scaled" are multiplied by `INLET_TIME_SCALE`. */
export const RECONCILE_DEFAULTS = Object.freeze({
  /** `INLET_RECONCILE_AFTER_MS`: an object with no accepted delivery for this long is polled (not scaled). */
  afterMs: 120_000,
  /** First wait before polling again (scaled); doubles per poll. */
  firstPollMs: 5_000,
  /** Longest wait between two polls of one object (scaled). */
  maxPollMs: 300_000,
  /** Objects first seen longer ago than this are given up (not scaled). */
  maxAgeMs: 24 * 60 * 60 * 1000,
  /** How often `serve` looks for stale objects and due polls (scaled). */
  intervalMs: 5_000,
  /** Objects polled at once. */
  concurrency: 4,
  /** Rows read per query. */
  batch: 100,
});

/**
 * The wait after the `polls`-th poll of an object (1 for the first): 5 s, 10 s, 20 s… capped at
 * 5 min, times the time scale. `polls` 0 is the wait before the first poll of an object just created.
 */
export function pollDelayMs(
  polls: number,
  timeScale = 1,
  bounds: { firstPollMs: number; maxPollMs: number } = RECONCILE_DEFAULTS,
): number {
  const delay = backoffDelay({ baseMs: bounds.firstPollMs, maxMs: bounds.maxPollMs, attempt: polls });
  return Math.max(1, Math.round(delay * timeScale));
}
