import type { StoreCapabilities } from './types.js';

/**
 * SQLite: one writer, and each transaction runs to its end on the event loop; but a committed batch
 * waits for its fsync off the loop, so later batches may commit meanwhile (each waits for a sync of its own).
 */
export const SQLITE_CAPABILITIES: StoreCapabilities = Object.freeze({
  maxConcurrentCommits: 8,
  multiInstance: false,
  skipLocked: false,
  crossProcessNotify: false,
});

export const POSTGRES_CAPABILITIES: StoreCapabilities = Object.freeze({
  // Row locks let commits run side by side; a few at once keep the pool free for reads and pings.
  maxConcurrentCommits: 4,
  // Every commit takes the transitions lock until its COMMIT: at a steady load, one commit at a time
  // and larger batches answer sooner than several small commits queued on that lock (docs/benchmarks.md).
  concurrentCommitBacklog: 16,
  oneCommitPerObject: true,
  multiInstance: true,
  skipLocked: true,
  crossProcessNotify: true,
});

/** What each dialect can, by the name `parseDatabaseUrl` gives it. */
export const DIALECT_CAPABILITIES = Object.freeze({
  sqlite: SQLITE_CAPABILITIES,
  postgres: POSTGRES_CAPABILITIES,
});

/**
 * What a store of `dialect` not open yet is taken to do: its dialect's facts (so services started
 * before it connects still know whether other processes notify), one commit at a time.
 */
export function capabilitiesBeforeOpen(dialect: keyof typeof DIALECT_CAPABILITIES): StoreCapabilities {
  return Object.freeze({ ...DIALECT_CAPABILITIES[dialect], maxConcurrentCommits: 1 });
}
