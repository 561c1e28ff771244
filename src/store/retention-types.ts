/**
 * Retention (CONTRACT §13): deleting what is older than a cutoff, a small window of rows at a time so a
 * running `serve` keeps committing in between. Folded states, undelivered messages and every row they
 * still need stay.
 */

/** In the order a prune walks them: each frees rows the next one may then delete. */
export const PRUNE_TABLES = ['messages', 'transitions', 'events', 'rejections'] as const;
export type PruneTable = (typeof PRUNE_TABLES)[number];

export interface PruneWindow {
  table: PruneTable;
  /** Rows received (recorded, delivered) before this time go. */
  cutoffMs: number;
  /** The `seq` the previous window ended at (0 to start). */
  afterSeq: number;
  /** Rows looked at in this window (deleted or not). */
  limit: number;
  /** Count what would go, delete nothing. */
  dryRun: boolean;
}

export interface PruneWindowResult {
  /** Rows deleted (or, in a dry run, that would be). */
  deleted: number;
  /** Attempts deleted with their messages (messages only). */
  attempts: number;
  /** Where the next window starts. */
  lastSeq: number;
  /**
   * No older row is expected past `lastSeq`: the window was empty, or all of it arrived after the
   * cutoff (rows are numbered in arrival order).
   */
  done: boolean;
}

/** What holds transitions back: an enabled consumer that has not fanned them out yet. */
export interface LaggingConsumer {
  name: string;
  position: number;
}

export interface RetentionStore {
  /**
   * Deletes, in one short transaction, the rows of one window of `table` (by `seq`) that are older than
   * the cutoff and no longer needed:
   * - messages: delivered before the cutoff, with their attempts (pending and dead ones stay);
   * - transitions: recorded before the cutoff, already fanned out to every enabled consumer, and not
   *   the body of a pending or dead message;
   * - events: received before the cutoff, neither a folded state's winning event nor a kept
   *   transition's;
   * - rejections: received before the cutoff.
   */
  pruneWindow(window: PruneWindow): Promise<PruneWindowResult>;
  /** The lowest and highest `seq` in the table (0 and -1 when it is empty), for progress. */
  seqRange(table: PruneTable): Promise<{ first: number; last: number }>;
  /**
   * The enabled consumer with the lowest position that has not fanned out a transition recorded before
   * the cutoff yet (so that transition stays), if any.
   */
  laggingConsumer(cutoffMs: number): Promise<LaggingConsumer | undefined>;
  /** Which of these sha256s an archive row still names. */
  referencedFiles(sha256s: readonly string[]): Promise<Set<string>>;
}
