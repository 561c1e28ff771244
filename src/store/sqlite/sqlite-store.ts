import { mkdirSync, statSync, type Stats } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseNotFoundError, StoreOpenError, StoreUnavailableError } from '../errors.js';
import { INLET_TABLE_NAMES, type DialectTypes, type FoundTables } from '../migrations.js';
import type { OpenStoreOptions, StoreLogger } from '../options.js';
import { insertEventParams, toNumber, type SqlQuery, type SqlValue } from '../statements.js';
import { SQLITE_CAPABILITIES } from '../dialects.js';
import {
  applyMigrations,
  appliedMigrations,
  assertInletSchema,
  INLET_REQUIRED_TABLES,
  logAppliedMigrations,
  type SchemaConnection,
  warnIfSchemaOlder,
} from '../schema-setup.js';
import { SqlReadStore } from '../sql-read-store.js';
import type { CommitOutcome, IncomingEvent, NewRejection, RejectionLimits, Store } from '../types.js';
import type { RecoverStore } from '../recover-types.js';
import type { RetentionStore } from '../retention-types.js';
import { openFailure, toStoreError } from './sqlite-errors.js';
import { readinessProbeEvent } from '../readiness-probe.js';
import { SqliteJobs } from './sqlite-jobs.js';
import { createSqliteRecoverStore } from './sqlite-recover.js';
import { createSqliteRetentionStore } from './sqlite-retention.js';
import { INSERT_EVENT_SQL } from './commit-sql.js';
import { configureConnection, SqliteWriter } from './sqlite-writer.js';
import { restoreKeptWal, WalCheckpointer } from './wal-checkpoint.js';
import { type SyncFunction, WalSync } from './wal-sync.js';

export const SQLITE_TYPES: DialectTypes = {
  blob: 'BLOB',
  bigint: 'INTEGER',
  // AUTOINCREMENT: a trimmed rejection's seq is never handed out again, so cursors stay valid.
  serialPrimaryKey: 'INTEGER PRIMARY KEY AUTOINCREMENT',
};

export interface SqliteStoreOptions extends OpenStoreOptions {
  /**
   * How long a statement waits for another process's lock before failing with
   * `StoreUnavailableError`. better-sqlite3 waits synchronously, blocking the event loop, so this stays
   * short in `serve` mode; the ingest batcher retries asynchronously.
   */
  busyTimeoutMs?: number;
  /** WAL frames that start a checkpoint (`CHECKPOINT_FRAMES`, SQLite's default); tests set fewer. */
  checkpointFrames?: number;
  /** Replaces the fsync of the database file after a checkpoint (tests: a disk that fails it). */
  checkpointSync?: SyncFunction;
  /** Replaces the fdatasync of the WAL after each commit (tests: a disk that fails it). */
  walSync?: SyncFunction;
}

export const DEFAULT_SERVE_BUSY_TIMEOUT_MS = 25;
/** CLI reads may wait: nothing else runs on their event loop. */
export const DEFAULT_READ_BUSY_TIMEOUT_MS = 5000;
/** Migrations run once at start; waiting for a starting sibling process is fine there. */
const MIGRATION_BUSY_TIMEOUT_MS = 5000;
const MEMORY_PATH = ':memory:';
const MAX_CACHED_STATEMENTS = 64;
/** Deliveries remembered as committed but never answered 200 (a failed WAL sync), newest kept. */
const MAX_UNANSWERED = 100_000;
const DELETE_EVENT_SQL = 'DELETE FROM events WHERE delivery_key = ?';

export interface SqlitePragmas {
  journalMode: string;
  /** 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA. */
  synchronous: number;
  busyTimeoutMs: number;
  /** 0 while Inlet runs the checkpoints itself (wal-checkpoint.ts). */
  walAutocheckpoint: number;
}

/** Opens (and in `serve` mode creates and migrates) the SQLite database at `path`. */
export async function openSqliteStore(path: string, options: SqliteStoreOptions): Promise<SqliteStore> {
  const location = path === MEMORY_PATH ? path : resolve(path);
  return options.mode === 'serve' ? openForServe(location, options) : openForRead(location, options);
}

async function openForServe(location: string, options: SqliteStoreOptions): Promise<SqliteStore> {
  let db: Database.Database | undefined;
  try {
    if (location !== MEMORY_PATH) {
      assertFileOrNothing(location);
      mkdirSync(dirname(location), { recursive: true });
      restoreKeptWal(location, options.logger);
    }
    db = new Database(location);
    db.pragma(`busy_timeout = ${MIGRATION_BUSY_TIMEOUT_MS}`);
    // Before anything is written (WAL mode included): someone else's tables are left as they are.
    await assertInletSchema(schemaConnection(db), location);
    // WAL: readers (the CLI) never block the writer and see only committed data.
    const journalMode = db.pragma('journal_mode = WAL', { simple: true });
    if (journalMode !== 'wal' && location !== MEMORY_PATH) {
      throw new Error(`SQLite database ${location} refused WAL journal mode (got ${String(journalMode)})`);
    }
    // A file's commits are made durable by WalSync after COMMIT (see wal-sync.ts), not inside it,
    // and its checkpoints sync off the event loop too (wal-checkpoint.ts).
    const onDisk = location !== MEMORY_PATH;
    configureConnection(db, MIGRATION_BUSY_TIMEOUT_MS, onDisk ? 'NORMAL' : 'FULL');
    await migrate(db, location, options.logger);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_SERVE_BUSY_TIMEOUT_MS}`);
    const wal = onDisk ? new WalSync(location, options.walSync) : undefined;
    const checkpoints =
      wal === undefined
        ? undefined
        : new WalCheckpointer(db, location, wal, {
            ...(options.checkpointFrames === undefined ? {} : { frames: options.checkpointFrames }),
            ...(options.checkpointSync === undefined ? {} : { syncDatabase: options.checkpointSync }),
            ...(options.logger === undefined ? {} : { logger: options.logger }),
          });
    return new SqliteStore(db, location, 'serve', {
      writer: new SqliteWriter(db),
      wal,
      checkpoints,
      optimizeOnClose: options.optimizeOnClose ?? true,
    });
  } catch (error) {
    db?.close();
    throw openFailure(error, location);
  }
}

/** A directory (or a device) where the database file should be is a wrong setting, not a passing fault. */
function assertFileOrNothing(location: string): void {
  const stat = statSync(location, { throwIfNoEntry: false });
  if (stat === undefined || stat.isFile()) return;
  const what = stat.isDirectory() ? 'a directory' : 'not a regular file';
  const example = stat.isDirectory() ? `, e.g. ${join(location, 'inlet.db')}` : '';
  throw new StoreOpenError(
    `${location} is ${what}, not a database file — point --database (DATABASE_URL) at a file${example}`,
    'configuration',
  );
}

/** Inlet's tables as the file holds them (none in a new file). */
function sqliteTables(db: Database.Database): FoundTables {
  const columnsOf = db.prepare<[string], string>('SELECT name FROM pragma_table_info(?)').pluck();
  const found = new Map<string, Set<string>>();
  for (const table of INLET_TABLE_NAMES) {
    const columns = columnsOf.all(table);
    if (columns.length > 0) found.set(table, new Set(columns));
  }
  return found;
}

/** The schema checks' and migration runner's view of the connection (synchronous underneath). */
function schemaConnection(db: Database.Database): SchemaConnection {
  return {
    tables: async () => sqliteTables(db),
    run: async (sql, params) => {
      if (params === undefined) db.exec(sql);
      else db.prepare<SqlValue[]>(sql).run(...params);
    },
    rows: async <Row>(sql: string) => db.prepare(sql).all() as Row[],
  };
}

async function openForRead(location: string, options: SqliteStoreOptions): Promise<SqliteStore> {
  if (location === MEMORY_PATH) {
    throw new DatabaseNotFoundError('An in-memory SQLite database holds no Inlet data to read.');
  }
  let stat: Stats | undefined;
  try {
    stat = statSync(location, { throwIfNoEntry: false });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new DatabaseNotFoundError(`No Inlet database at ${location} (${code}; nothing was created).`, {
      cause: error,
    });
  }
  if (stat === undefined) {
    throw new DatabaseNotFoundError(`No Inlet database at ${location} (nothing was created).`);
  }
  if (!stat.isFile()) {
    throw new DatabaseNotFoundError(`${location} is not a file, so it is not an Inlet database.`);
  }
  let db: Database.Database | undefined;
  try {
    db = new Database(location, { readonly: true, fileMustExist: true });
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? DEFAULT_READ_BUSY_TIMEOUT_MS}`);
    const found = new Set(
      (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map(
        (row) => row.name,
      ),
    );
    if (!INLET_REQUIRED_TABLES.every((table) => found.has(table))) {
      throw new DatabaseNotFoundError(
        `${location} is not an Inlet database (it has no Inlet tables; \`inlet serve\` creates them).`,
      );
    }
    const applied = await appliedMigrations(schemaConnection(db));
    warnIfSchemaOlder(applied, location, options.logger, '`inlet serve`');
    return new SqliteStore(db, location, 'read', undefined);
  } catch (error) {
    db?.close();
    if (error instanceof DatabaseNotFoundError) throw error;
    if (error instanceof Database.SqliteError && error.code === 'SQLITE_NOTADB') {
      throw new DatabaseNotFoundError(`${location} is not an Inlet database (not a SQLite file).`, {
        cause: error,
      });
    }
    throw toStoreError(error, 'opening', location);
  }
}

/** The pending migrations in one IMMEDIATE transaction (nothing else uses the connection while it opens). */
async function migrate(
  db: Database.Database,
  location: string,
  logger: StoreLogger | undefined,
): Promise<void> {
  db.exec('BEGIN IMMEDIATE');
  try {
    const applied = await applyMigrations(schemaConnection(db), SQLITE_TYPES, location);
    db.exec('COMMIT');
    logAppliedMigrations(logger, location, applied);
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

type Statement = Database.Statement<SqlValue[]>;

/** What `serve` writes with: statements on the store's connection, durability through the WAL sync. */
interface Writing {
  writer: SqliteWriter;
  /** Absent for `:memory:`, which has nothing to make durable. */
  wal: WalSync | undefined;
  /** Absent for `:memory:`, which has no WAL. */
  checkpoints: WalCheckpointer | undefined;
  /** `OpenStoreOptions.optimizeOnClose`. */
  optimizeOnClose: boolean;
}

/** The single-node store: one better-sqlite3 connection, WAL, commits made durable off the event loop. */
export class SqliteStore extends SqlReadStore implements Store {
  readonly dialect = 'sqlite';
  readonly capabilities = SQLITE_CAPABILITIES;
  readonly location: string;
  readonly mode: OpenStoreOptions['mode'];
  readonly jobs: SqliteJobs;
  /** Reconcile and archive rows (CONTRACT §11). */
  readonly recover: RecoverStore;
  readonly retention: RetentionStore;

  #db: Database.Database;
  #writing: Writing | undefined;
  /** Deliveries committed whose WAL sync failed, with what their commit decided: no sender got a 200. */
  #unanswered = new Map<string, CommitOutcome>();
  #closed = false;
  #dynamic = new Map<string, Statement>();
  #ping: Statement;
  #probe: Database.Transaction<(event: IncomingEvent) => void> | undefined;

  /** Use `openSqliteStore`: it sets the pragmas and migrates first. */
  constructor(
    db: Database.Database,
    location: string,
    mode: OpenStoreOptions['mode'],
    writing: Writing | undefined,
  ) {
    super();
    this.#db = db;
    this.#writing = writing;
    this.location = location;
    this.mode = mode;
    const prepare = (sql: string) => db.prepare<SqlValue[]>(sql);
    this.#ping = prepare('SELECT 1');
    this.jobs = new SqliteJobs({
      db,
      read: (doing, work) => this.#run(doing, work),
      write: (doing, work) => this.#write(doing, 0, () => work()),
    });
    this.recover = createSqliteRecoverStore({
      db,
      read: (doing, work) => this.#run(doing, work),
      write: (doing, work) => this.#write(doing, 1, () => work()),
    });
    // A prune's deletes need not wait for their own WAL sync: the next commit's covers them.
    this.retention = createSqliteRetentionStore({
      db,
      read: (doing, work) => this.#run(doing, work),
      write: (doing, work) => this.#write(doing, 0, () => work()),
    });
  }

  async commitEvents(events: readonly IncomingEvent[]): Promise<CommitOutcome[]> {
    // Answered only once on disk: the caller (and so the sender) waits for the WAL sync. When the sync
    // fails the rows are committed but not known durable, and their senders get a 503. The same
    // deliveries coming again (the batcher's retry, or the sender's) find their rows: they get the
    // outcome of that first commit, not "duplicate" (nobody got a 200 for it), and their duplicate
    // counter stays, once a sync has worked.
    const unanswered = this.#unanswered;
    let outcomes: CommitOutcome[] = [];
    try {
      await this.#write('committing events', events.length, (writer) => {
        outcomes = writer
          .commitEvents(events, (key) => unanswered.has(key))
          .map((outcome, i) => {
            const first = outcome.duplicate ? unanswered.get(events[i]!.key) : undefined;
            return first ?? outcome;
          });
      });
    } catch (error) {
      // Written, but the WAL sync failed: remember what each new row's commit decided.
      if (outcomes.length > 0) {
        events.forEach((event, i) => {
          const outcome = outcomes[i]!;
          if (!outcome.duplicate && !unanswered.has(event.key)) this.#rememberUnanswered(event.key, outcome);
        });
      }
      throw error;
    }
    for (const event of events) unanswered.delete(event.key);
    return outcomes;
  }

  /** Bounded: the oldest is forgotten first (it then counts as a duplicate, as before). */
  #rememberUnanswered(key: string, outcome: CommitOutcome): void {
    if (this.#unanswered.size >= MAX_UNANSWERED) {
      const oldest = this.#unanswered.keys().next();
      if (oldest.done !== true) this.#unanswered.delete(oldest.value);
    }
    this.#unanswered.set(key, outcome);
  }

  async recordRejections(rows: readonly NewRejection[], limits: RejectionLimits): Promise<void> {
    // Written in the background after their answers (RejectionLog), so nobody waits for this sync.
    await this.#write('recording rejections', rows.length, (writer) => writer.recordRejections(rows, limits));
  }

  protected queryRows<Row>(doing: string, query: SqlQuery): Row[] | Promise<Row[]> {
    return this.#all<Row>(doing, query);
  }

  async ping(): Promise<void> {
    // A store that may not write any more is not ready, even though it still reads.
    const failure = this.#writing?.checkpoints?.failure;
    if (failure !== undefined) throw failure;
    this.#run('answering a ping', () => this.#ping.get());
  }

  /**
   * A delivery row inserted and deleted in one transaction, committed and synced like a delivery: the
   * lock, the events table with its indexes, the WAL and the disk all take a write, and no row stays
   * (only its seq is skipped).
   */
  async probeWrite(): Promise<void> {
    const event = readinessProbeEvent();
    await this.#write('probing writes', 1, () => {
      this.#probe ??= this.#db.transaction((probe: IncomingEvent) => {
        this.#db.prepare<SqlValue[]>(INSERT_EVENT_SQL).run(...insertEventParams(probe));
        this.#db.prepare<SqlValue[]>(DELETE_EVENT_SQL).run(probe.key);
      });
      this.#probe.immediate(event);
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Commits waiting for their sync get it first.
    await this.#writing?.checkpoints?.idle();
    await this.#writing?.wal?.settled();
    if (this.#writing?.checkpoints?.failure !== undefined) {
      // The database file may have lost pages only the WAL still holds. Closing the last connection
      // would checkpoint and delete the WAL, and any write would restart it: leave both connections
      // open, so the process exits with the WAL intact and SQLite recovers from it on the next start.
      this.#writing.wal?.close();
      return;
    }
    this.#writing?.checkpoints?.close();
    this.#writing?.wal?.close();
    if (this.#writing?.optimizeOnClose === true) {
      try {
        // SQLite's advice for long-lived connections: refresh planner statistics on close, sampling
        // (analysis_limit) so shutdown stays quick on a large database (a full ANALYZE took ~0.3 s at
        // 100,000 deliveries).
        this.#db.pragma('analysis_limit = 400');
        this.#db.pragma('optimize');
      } catch {
        // Best effort: closing matters more.
      }
    }
    this.#db.close();
  }

  /** The connection's settings, for diagnostics and tests. */
  pragmas(): SqlitePragmas {
    return this.#run('reading pragmas', () => ({
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: toNumber(this.#db.pragma('synchronous', { simple: true })),
      busyTimeoutMs: toNumber(this.#db.pragma('busy_timeout', { simple: true })),
      walAutocheckpoint: toNumber(this.#db.pragma('wal_autocheckpoint', { simple: true })),
    }));
  }

  #all<Row>(doing: string, query: SqlQuery): Row[] {
    return this.#run(doing, () => this.#prepareCached(query.sql).all(...query.params) as Row[]);
  }

  /** List queries vary only by which filters are present: a handful of shapes, each prepared once. */
  #prepareCached(sql: string): Statement {
    let statement = this.#dynamic.get(sql);
    if (statement === undefined) {
      if (this.#dynamic.size >= MAX_CACHED_STATEMENTS) this.#dynamic.clear();
      statement = this.#db.prepare<SqlValue[]>(sql);
      this.#dynamic.set(sql, statement);
    }
    return statement;
  }

  #run<T>(doing: string, work: () => T): T {
    if (this.#closed) throw new StoreUnavailableError(`SQLite database ${this.location} is closed`);
    try {
      return work();
    } catch (error) {
      throw toStoreError(error, doing, this.location);
    }
  }

  /**
   * Runs a write transaction once no checkpoint holds writes (wal-checkpoint.ts), then waits until it
   * is on disk. The check, the write and the checkpoint's count run in one synchronous stretch, so no
   * write can slip in between a checkpoint's WAL sync and its copy.
   */
  async #write<T>(doing: string, rows: number, work: (writer: SqliteWriter) => T): Promise<T> {
    let writing = this.#writable();
    for (let hold = writing.checkpoints?.writeHold(); hold !== undefined;) {
      await hold;
      writing = this.#writable();
      hold = writing.checkpoints?.writeHold();
    }
    const { writer, wal, checkpoints } = writing;
    const result = this.#run(doing, () => work(writer));
    checkpoints?.committed();
    if (wal === undefined || rows === 0) return result;
    try {
      await wal.durable();
    } catch (error) {
      throw new StoreUnavailableError(
        `SQLite database ${this.location} unavailable while ${doing} (WAL sync failed: ${(error as Error).message})`,
        { cause: error },
      );
    }
    return result;
  }

  #writable(): Writing {
    if (this.#writing === undefined) throw new Error(`SQLite database ${this.location} was opened read-only`);
    if (this.#closed) throw new StoreUnavailableError(`SQLite database ${this.location} is closed`);
    return this.#writing;
  }
}
