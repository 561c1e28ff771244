import { setTimeout as delay } from 'node:timers/promises';
import type { ArchiveStorage } from '../archive/archive-storage.js';
import { StoreUnavailableError } from '../store/errors.js';
import { PRUNE_TABLES, type LaggingConsumer, type PruneTable } from '../store/retention-types.js';
import type { Store } from '../store/types.js';

/** Rows a window looks at: it starts at `initialRows` and adapts so each transaction stays short. */
export interface PruneWindowSettings {
  initialRows: number;
  minRows: number;
  maxRows: number;
  targetMs: number;
  pauseMs: number;
  pauseFactor: number;
  busyRetries: number;
}

const PRUNE_WINDOW_DEFAULTS: Readonly<PruneWindowSettings> = Object.freeze({
  initialRows: 250,
  minRows: 50,
  maxRows: 2000,
  /**
   * A window taking longer than this is halved; one under half of it grows. Well under `serve`'s
   * SQLite busy timeout (25 ms), so a commit from another process waits for the window, never fails.
   */
  targetMs: 5,
  /**
   * Between windows, and at least `pauseFactor` times as long as the last one took: commits waiting for
   * the writer go first, and the WAL checkpoints a prune's rewritten pages cause stay rare (at 1,000,000
   * deliveries, a pause as long as the window gave deliveries a p99 of 147 ms in `serve`; three times,
   * 62 ms).
   */
  pauseMs: 10,
  pauseFactor: 3,
  /** A busy database (another process writing) is tried again this often before giving up. */
  busyRetries: 50,
});

/** Archived files this recent are never swept: their row may not be written yet. */
const ARCHIVE_GRACE_MS = 60 * 60 * 1000;

export interface PruneProgress {
  table: PruneTable | 'files';
  /** 0…1 over the whole run, by how far each table's walk has got. */
  fraction: number;
  deleted: PruneCounts;
}

export interface PruneCounts {
  events: number;
  transitions: number;
  messages: number;
  /** Attempts of the deleted messages. */
  message_attempts: number;
  rejections: number;
  /** Archived files no row names any more. */
  files: number;
}

export interface PruneReport {
  cutoffMs: number;
  dryRun: boolean;
  /** Deleted, or in a dry run what would be. */
  deleted: PruneCounts;
  /** An enabled consumer that keeps older transitions (and their events) until it catches up. */
  laggingConsumer: LaggingConsumer | undefined;
  durationMs: number;
  windows: number;
  /** The longest window (read, delete and commit), in ms. */
  longestWindowMs: number;
}

export interface PruneOptions {
  /** Rows received before this go. */
  cutoffMs: number;
  dryRun?: boolean;
  /** Also sweep these archived files (off when absent). */
  archive?: Pick<ArchiveStorage, 'list' | 'remove'>;
  onProgress?: (progress: PruneProgress) => void;
  signal?: AbortSignal;
  now?: () => number;
  window?: Partial<PruneWindowSettings>;
}

type SeqRange = Map<PruneTable, { first: number; last: number }>;

/**
 * Deletes what is older than the cutoff (CONTRACT §13), table by table in `PRUNE_TABLES` order, a short
 * transaction per window of rows with a pause between, so ingest never waits long for the writer.
 */
export async function runPrune(store: Pick<Store, 'retention'>, options: PruneOptions): Promise<PruneReport> {
  const started = performance.now();
  const settings = { ...PRUNE_WINDOW_DEFAULTS, ...options.window };
  const dryRun = options.dryRun === true;
  const deleted: PruneCounts = {
    events: 0,
    transitions: 0,
    messages: 0,
    message_attempts: 0,
    rejections: 0,
    files: 0,
  };
  const ranges: SeqRange = new Map();
  for (const table of PRUNE_TABLES) ranges.set(table, await store.retention.seqRange(table));
  const span = (table: PruneTable) => {
    const r = ranges.get(table)!;
    return Math.max(0, r.last - r.first + 1);
  };
  const total = PRUNE_TABLES.reduce((sum, table) => sum + span(table), 0);
  let walked = 0;
  const report = (table: PruneProgress['table'], extra = 0) =>
    options.onProgress?.({
      table,
      fraction: total === 0 ? 1 : Math.min(1, (walked + extra) / total),
      deleted: { ...deleted },
    });

  let rows = settings.initialRows;
  let windows = 0;
  let longestWindowMs = 0;
  for (const table of PRUNE_TABLES) {
    const { first } = ranges.get(table)!;
    let afterSeq = first - 1;
    report(table);
    for (;;) {
      options.signal?.throwIfAborted();
      const windowStarted = performance.now();
      const result = await withBusyRetries(settings.busyRetries, options.signal, () =>
        store.retention.pruneWindow({ table, cutoffMs: options.cutoffMs, afterSeq, limit: rows, dryRun }),
      );
      const tookMs = performance.now() - windowStarted;
      windows += 1;
      longestWindowMs = Math.max(longestWindowMs, tookMs);
      deleted[table] += result.deleted;
      deleted.message_attempts += result.attempts;
      report(table, Math.max(0, result.lastSeq - first + 1));
      if (result.done) break;
      afterSeq = result.lastSeq;
      if (tookMs > settings.targetMs) rows = Math.max(settings.minRows, Math.floor(rows / 2));
      else if (tookMs < settings.targetMs / 2) rows = Math.min(settings.maxRows, Math.ceil(rows * 1.5));
      const pauseMs = Math.max(settings.pauseMs, settings.pauseFactor * tookMs);
      await delay(pauseMs, undefined, options.signal ? { signal: options.signal } : undefined);
    }
    walked += span(table);
    report(table);
  }

  if (options.archive !== undefined) {
    report('files');
    const now = options.now?.() ?? Date.now();
    deleted.files = await sweepArchive(
      store,
      options.archive,
      Math.min(options.cutoffMs, now - ARCHIVE_GRACE_MS),
      dryRun,
      options.signal,
    );
    report('files');
  }
  return {
    cutoffMs: options.cutoffMs,
    dryRun,
    deleted,
    laggingConsumer: await store.retention.laggingConsumer(options.cutoffMs),
    durationMs: Math.round(performance.now() - started),
    windows,
    longestWindowMs: Math.round(longestWindowMs),
  };
}

/** Removes archived files written before `beforeMs` that no archive row names. */
async function sweepArchive(
  store: Pick<Store, 'retention'>,
  archive: Pick<ArchiveStorage, 'list' | 'remove'>,
  beforeMs: number,
  dryRun: boolean,
  signal: AbortSignal | undefined,
): Promise<number> {
  let removed = 0;
  let batch: string[] = [];
  const flush = async () => {
    const kept = await store.retention.referencedFiles(batch);
    for (const sha256 of batch) {
      if (kept.has(sha256)) continue;
      if (!dryRun) await archive.remove(sha256);
      removed += 1;
    }
    batch = [];
  };
  for await (const file of archive.list()) {
    signal?.throwIfAborted();
    if (file.modifiedAtMs >= beforeMs) continue;
    batch.push(file.sha256);
    if (batch.length >= 500) await flush();
  }
  if (batch.length > 0) await flush();
  return removed;
}

/** Another process holding the SQLite writer answers "busy": wait a little and try the window again. */
async function withBusyRetries<T>(
  retries: number,
  signal: AbortSignal | undefined,
  work: () => Promise<T>,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!(error instanceof StoreUnavailableError) || attempt >= retries) throw error;
      await delay(20 + Math.random() * 30, undefined, signal ? { signal } : undefined);
    }
  }
}
