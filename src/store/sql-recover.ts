/**
 * The reconcile and archive tables' SQL, shared by both dialects (`?` placeholders;
 * `numberPlaceholders` for PostgreSQL). Each dialect only supplies how to read and how to write.
 */
import type { ObjectKind } from '../replicate/types.js';
import type {
  ArchiveCandidate,
  ArchiveFileRecord,
  ArchiveResult,
  NewArchiveFile,
  NewTracked,
  PollUpdate,
  RecoverStore,
  StaleQuery,
  TrackedObject,
  TrackSource,
} from './recover-types.js';
import { toNumber, type SqlQuery, type SqlValue } from './statements.js';

/**
 * How a dialect runs the shared statements of recover, retention and the job store: reads, and writes
 * in one transaction.
 */
export interface SqlExecutor {
  all<Row>(doing: string, query: SqlQuery): Promise<Row[]>;
  /** Runs the statements in order in one transaction; answers the affected row count of each. */
  write(doing: string, queries: readonly SqlQuery[]): Promise<number[]>;
}

const TRACKED_COLUMNS = 'id, kind, source, created_at, last_polled_at, next_poll_at, attempts, done';

interface TrackedRow {
  id: string;
  kind: string;
  source: string;
  created_at: unknown;
  last_polled_at: unknown;
  next_poll_at: unknown;
  attempts: unknown;
  done: unknown;
}

function trackedFromRow(row: TrackedRow): TrackedObject {
  return {
    id: row.id,
    kind: row.kind as ObjectKind,
    source: row.source as TrackSource,
    createdAtMs: toNumber(row.created_at),
    lastPolledAtMs: row.last_polled_at === null ? null : toNumber(row.last_polled_at),
    nextPollAtMs: toNumber(row.next_poll_at),
    attempts: toNumber(row.attempts),
    done: toNumber(row.done) === 1,
  };
}

const FILE_COLUMNS =
  'prediction_id, path, source_url, sha256, size, content_type, archived_at, error, attempts, next_attempt_at';

interface FileRow {
  prediction_id: string;
  path: string;
  source_url: string;
  sha256: string | null;
  size: unknown;
  content_type: string | null;
  archived_at: unknown;
  error: string | null;
  attempts: unknown;
  next_attempt_at: unknown;
}

const nullableNumber = (value: unknown) => (value === null || value === undefined ? null : toNumber(value));

function fileFromRow(row: FileRow): ArchiveFileRecord {
  return {
    predictionId: row.prediction_id,
    path: row.path,
    sourceUrl: row.source_url,
    sha256: row.sha256,
    size: nullableNumber(row.size),
    contentType: row.content_type,
    archivedAtMs: nullableNumber(row.archived_at),
    error: row.error,
    attempts: toNumber(row.attempts),
    nextAttemptAtMs: nullableNumber(row.next_attempt_at),
  };
}

const q = (sql: string, ...params: SqlValue[]): SqlQuery => ({ sql, params });

/** The `RecoverStore` on any dialect's executor. */
export class SqlRecoverStore implements RecoverStore {
  readonly #db: SqlExecutor;

  constructor(executor: SqlExecutor) {
    this.#db = executor;
  }

  async track(row: NewTracked): Promise<void> {
    await this.#db.write('tracking an object', [
      q(
        `INSERT INTO tracked_objects (${TRACKED_COLUMNS}) VALUES (?, ?, ?, ?, NULL, ?, 0, 0) ON CONFLICT (id) DO NOTHING`,
        row.id,
        row.kind,
        row.source,
        row.createdAtMs,
        row.nextPollAtMs,
      ),
    ]);
  }

  async getTracked(id: string): Promise<TrackedObject | undefined> {
    const [row] = await this.#db.all<TrackedRow>(
      'reading a tracked object',
      q(`SELECT ${TRACKED_COLUMNS} FROM tracked_objects WHERE id = ?`, id),
    );
    return row === undefined ? undefined : trackedFromRow(row);
  }

  async trackStale(query: StaleQuery): Promise<number> {
    const [count] = await this.#db.write('tracking stale objects', [
      q(
        `INSERT INTO tracked_objects (${TRACKED_COLUMNS})
  SELECT o.id, o.kind, 'stale', o.first_received_at, NULL, ?, 0, 0 FROM objects o
  WHERE o.status_rank < 2 AND o.last_received_at <= ? AND o.first_received_at > ?
    AND NOT EXISTS (SELECT 1 FROM tracked_objects t WHERE t.id = o.id)
  ORDER BY o.last_received_at LIMIT ?
  ON CONFLICT (id) DO NOTHING`,
        query.nowMs,
        query.quietSinceMs,
        query.firstSeenAfterMs,
        query.limit,
      ),
    ]);
    return count ?? 0;
  }

  async listDuePolls(nowMs: number, limit: number): Promise<TrackedObject[]> {
    const rows = await this.#db.all<TrackedRow>(
      'listing due polls',
      q(
        `SELECT ${TRACKED_COLUMNS} FROM tracked_objects WHERE done = 0 AND next_poll_at <= ? ORDER BY next_poll_at, id LIMIT ?`,
        nowMs,
        limit,
      ),
    );
    return rows.map(trackedFromRow);
  }

  async updatePoll(id: string, update: PollUpdate): Promise<void> {
    await this.#db.write('recording a poll', [
      q(
        `UPDATE tracked_objects SET last_polled_at = COALESCE(?, last_polled_at), next_poll_at = ?, done = ?,
  attempts = attempts + ? WHERE id = ?`,
        update.polledAtMs,
        update.nextPollAtMs,
        update.done ? 1 : 0,
        update.attempted ? 1 : 0,
        id,
      ),
    ]);
  }

  async listArchiveCandidates(sinceMs: number, limit: number): Promise<ArchiveCandidate[]> {
    const rows = await this.#db.all<{ id: string; last_received_at: unknown }>(
      'listing objects to archive',
      q(
        `SELECT o.id, o.last_received_at FROM objects o
  WHERE o.status = 'succeeded' AND o.last_received_at >= ?
    AND NOT EXISTS (SELECT 1 FROM archive_scans s WHERE s.prediction_id = o.id)
  ORDER BY o.last_received_at, o.id LIMIT ?`,
        sinceMs,
        limit,
      ),
    );
    return rows.map((r) => ({ id: r.id, lastReceivedAtMs: toNumber(r.last_received_at) }));
  }

  async addArchiveFiles(
    predictionId: string,
    files: readonly NewArchiveFile[],
    nowMs: number,
  ): Promise<void> {
    await this.#db.write('recording files to archive', [
      ...files.map((f) =>
        q(
          `INSERT INTO archive_files (${FILE_COLUMNS}) VALUES (?, ?, ?, NULL, NULL, NULL, NULL, NULL, 0, ?)
  ON CONFLICT (prediction_id, path) DO NOTHING`,
          f.predictionId,
          f.path,
          f.sourceUrl,
          f.nextAttemptAtMs,
        ),
      ),
      q(
        'INSERT INTO archive_scans (prediction_id, scanned_at, files) VALUES (?, ?, ?) ON CONFLICT (prediction_id) DO NOTHING',
        predictionId,
        nowMs,
        files.length,
      ),
    ]);
  }

  async listArchiveFiles(predictionId: string): Promise<ArchiveFileRecord[]> {
    const rows = await this.#db.all<FileRow>(
      'listing archived files',
      q(`SELECT ${FILE_COLUMNS} FROM archive_files WHERE prediction_id = ? ORDER BY path`, predictionId),
    );
    return rows.map(fileFromRow);
  }

  async listDueArchiveFiles(nowMs: number, limit: number): Promise<ArchiveFileRecord[]> {
    const rows = await this.#db.all<FileRow>(
      'listing files due for archiving',
      q(
        `SELECT ${FILE_COLUMNS} FROM archive_files WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?
  ORDER BY next_attempt_at, prediction_id, path LIMIT ?`,
        nowMs,
        limit,
      ),
    );
    return rows.map(fileFromRow);
  }

  async recordArchiveResult(predictionId: string, path: string, result: ArchiveResult): Promise<void> {
    const query = result.ok
      ? q(
          `UPDATE archive_files SET sha256 = ?, size = ?, content_type = ?, archived_at = ?, error = NULL,
  attempts = attempts + 1, next_attempt_at = NULL WHERE prediction_id = ? AND path = ?`,
          result.sha256,
          result.size,
          result.contentType,
          result.archivedAtMs,
          predictionId,
          path,
        )
      : q(
          `UPDATE archive_files SET error = ?, attempts = attempts + 1, next_attempt_at = ?
  WHERE prediction_id = ? AND path = ? AND archived_at IS NULL`,
          result.error,
          result.nextAttemptAtMs,
          predictionId,
          path,
        );
    await this.#db.write('recording an archive result', [query]);
  }

  async findArchivedFile(sha256: string): Promise<ArchiveFileRecord | undefined> {
    const [row] = await this.#db.all<FileRow>(
      'reading an archived file',
      q(
        `SELECT ${FILE_COLUMNS} FROM archive_files WHERE sha256 = ? AND archived_at IS NOT NULL LIMIT 1`,
        sha256,
      ),
    );
    return row === undefined ? undefined : fileFromRow(row);
  }
}
