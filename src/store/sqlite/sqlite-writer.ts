import type Database from 'better-sqlite3';
import { foldBatch, type ObjectState } from '../object-state.js';
import {
  insertEventParams,
  insertRejectionParams,
  insertRejectionsSql,
  newTransitionValues,
  objectStateFromRow,
  REJECTION_TOTALS_SQL,
  toNumber,
  TRIM_REJECTIONS_BY_BYTES_SQL,
  TRIM_REJECTIONS_BY_ROWS_SQL,
  type ObjectStateRow,
  type RejectionTotalsRow,
  type SqlValue,
} from '../statements.js';
import {
  COUNT_DUPLICATE_SQL,
  FLAG_CONFLICT_SQL,
  INSERT_EVENT_SQL,
  INSERT_OBJECT_SQL,
  INSERT_TRANSITION_SQL,
  insertObjectParams,
  REPLACE_OBJECT_SQL,
  replaceObjectParams,
  SELECT_OBJECT_STATE_SQL,
  TOUCH_OBJECT_SQL,
  touchObjectParams,
} from './commit-sql.js';
import { orderedId } from '../random-id.js';
import type { CommitOutcome, IncomingEvent, NewRejection, RejectionLimits } from '../types.js';

// 8 MiB keeps `serve` under 150 MB RSS; list queries on a million deliveries stay ~2-3 ms (docs/benchmarks.md).
const CACHE_SIZE_KIB = 8 * 1024;

/**
 * Per-connection settings of every Inlet connection that may write (WAL itself is set once, in the file).
 *
 * A 200 is only sent once its delivery is on disk, safe from power loss. `FULL` gets that by fsyncing
 * the WAL inside every commit, blocking the event loop meanwhile. `serve` on a file uses `NORMAL`
 * (SQLite then syncs the WAL only around checkpoints) and fsyncs the WAL itself after each commit
 * (`WalSync`), answering only once that sync is done, so the next batch runs during the fsync.
 */
export function configureConnection(
  db: Database.Database,
  busyTimeoutMs: number,
  synchronous: 'FULL' | 'NORMAL' = 'FULL',
): void {
  db.pragma(`synchronous = ${synchronous}`);
  db.pragma('foreign_keys = ON');
  db.pragma(`cache_size = -${CACHE_SIZE_KIB}`);
  db.pragma(`busy_timeout = ${busyTimeoutMs}`);
}

type Statement = Database.Statement<SqlValue[]>;

/**
 * Everything `serve` writes to SQLite, on the store's connection, synchronously; durability is
 * `WalSync`'s (see `configureConnection`).
 */
export class SqliteWriter {
  #insertEvent: Statement;
  #countDuplicate: Statement;
  #flagConflict: Statement;
  #selectObjectState: Statement;
  #insertObject: Statement;
  #replaceObject: Statement;
  #touchObject: Statement;
  #insertRejection: Statement;
  #insertTransition: Statement;
  #rejectionTotals: Statement;
  #trimByRows: Statement;
  #trimByBytes: Statement;
  #commitBatch: Database.Transaction<
    (events: readonly IncomingEvent[], unanswered?: (key: string) => boolean) => CommitOutcome[]
  >;
  #recordBatch: Database.Transaction<(rows: readonly NewRejection[], limits: RejectionLimits) => void>;

  constructor(db: Database.Database) {
    const prepare = (sql: string) => db.prepare<SqlValue[]>(sql);
    this.#insertEvent = prepare(INSERT_EVENT_SQL);
    this.#countDuplicate = prepare(COUNT_DUPLICATE_SQL);
    this.#flagConflict = prepare(FLAG_CONFLICT_SQL);
    this.#selectObjectState = prepare(SELECT_OBJECT_STATE_SQL);
    this.#insertObject = prepare(INSERT_OBJECT_SQL);
    this.#replaceObject = prepare(REPLACE_OBJECT_SQL);
    this.#touchObject = prepare(TOUCH_OBJECT_SQL);
    this.#insertRejection = prepare(insertRejectionsSql(1));
    this.#insertTransition = prepare(INSERT_TRANSITION_SQL);
    this.#rejectionTotals = prepare(REJECTION_TOTALS_SQL);
    this.#trimByRows = prepare(TRIM_REJECTIONS_BY_ROWS_SQL);
    this.#trimByBytes = prepare(TRIM_REJECTIONS_BY_BYTES_SQL);
    this.#commitBatch = db.transaction(
      (events: readonly IncomingEvent[], unanswered?: (key: string) => boolean) =>
        this.#commit(events, unanswered),
    );
    this.#recordBatch = db.transaction((rows: readonly NewRejection[], limits: RejectionLimits) =>
      this.#recordAndTrim(rows, limits),
    );
  }

  /**
   * One transaction for the whole batch. IMMEDIATE takes the write lock up front: a busy database fails
   * before any work. A key `unanswered` says was stored by a commit nobody got a 200 for is not counted
   * as a duplicate when it comes again.
   */
  commitEvents(events: readonly IncomingEvent[], unanswered?: (key: string) => boolean): CommitOutcome[] {
    return events.length === 0 ? [] : this.#commitBatch.immediate(events, unanswered);
  }

  recordRejections(rows: readonly NewRejection[], limits: RejectionLimits): void {
    if (rows.length > 0) this.#recordBatch.immediate(rows, limits);
  }

  #commit(events: readonly IncomingEvent[], unanswered?: (key: string) => boolean): CommitOutcome[] {
    const stored = events.map((event) => {
      if (this.#insertEvent.run(...insertEventParams(event)).changes > 0) return true;
      if (unanswered?.(event.key) !== true) this.#countDuplicate.run(event.key);
      return false;
    });
    // Each object is read once and written once per batch, however many of its events the batch holds.
    const existing = new Map<string, ObjectState>();
    for (const [i, event] of events.entries()) {
      const id = event.object.id;
      if (!stored[i] || existing.has(id)) continue;
      const row = this.#selectObjectState.get(id) as ObjectStateRow | undefined;
      if (row !== undefined) existing.set(id, objectStateFromRow(row));
    }
    const { outcomes, states, summaries, conflicts, transitions } = foldBatch(
      events,
      (_event, i) => stored[i] === true,
      new Map(existing),
    );
    for (const [id, next] of states) {
      const summaryJson = summaries.get(id);
      if (!existing.has(id)) {
        // A new object's first event always sets its summary.
        this.#insertObject.run(...insertObjectParams(next, summaryJson ?? '{}'));
      } else if (summaryJson !== undefined) {
        this.#replaceObject.run(...replaceObjectParams(next, summaryJson));
      } else {
        this.#touchObject.run(...touchObjectParams(next));
      }
    }
    for (const key of conflicts) this.#flagConflict.run(key);
    // One writer: rowids follow commit order, so a reader's "after seq" never skips a later commit.
    const recordedAtMs = Date.now();
    for (const transition of transitions) {
      this.#insertTransition.run(...newTransitionValues(transition, recordedAtMs));
    }
    return outcomes;
  }

  #recordAndTrim(rows: readonly NewRejection[], limits: RejectionLimits): void {
    for (const row of rows) {
      this.#insertRejection.run(...insertRejectionParams(orderedId('rej_'), row));
    }
    const totals = this.#rejectionTotals.get() as RejectionTotalsRow;
    if (toNumber(totals.row_count) > limits.maxRows) this.#trimByRows.run(limits.maxRows);
    if (toNumber(totals.body_bytes) > limits.maxBodyBytes) this.#trimByBytes.run(limits.maxBodyBytes);
  }
}
