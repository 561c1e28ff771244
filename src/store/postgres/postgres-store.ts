import pg from 'pg';
import type { PoolClient, PoolConfig, QueryResultRow } from 'pg';
import { DatabaseNotFoundError, InvalidDatabaseUrlError, StoreUnavailableError } from '../errors.js';
import { INLET_TABLE_NAMES, type DialectTypes, type FoundTables } from '../migrations.js';
import type { OpenStoreOptions, StoreLogger } from '../options.js';
import { numberPlaceholders, type SqlQuery } from '../statements.js';
import { POSTGRES_CAPABILITIES } from '../dialects.js';
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
import type {
  CommitOutcome,
  CommitPaths,
  IncomingEvent,
  NewRejection,
  RejectionLimits,
  Store,
} from '../types.js';
import {
  describePostgresError,
  isPostgresUnavailable,
  openFailure,
  toStoreError,
} from './postgres-errors.js';
import { readinessProbeEvent } from '../readiness-probe.js';
import { PostgresJobs } from './postgres-jobs.js';
import type { RecoverStore } from '../recover-types.js';
import type { RetentionStore } from '../retention-types.js';
import { createPostgresRecoverStore } from './postgres-recover.js';
import { createPostgresRetentionStore } from './postgres-retention.js';
import { maskPostgresUrl } from './url.js';
import { PostgresWriter, rollback, transaction } from './postgres-writer.js';

export const POSTGRES_TYPES: DialectTypes = {
  blob: 'BYTEA',
  bigint: 'BIGINT',
  // A sequence never hands a value out twice, so cursors over trimmed rejections stay valid.
  serialPrimaryKey: 'BIGSERIAL PRIMARY KEY',
};

export interface PostgresStoreOptions extends OpenStoreOptions {
  /** Connections in the pool (default 10 for serve, 2 for read). */
  poolSize?: number;
  /** How long opening a connection may take before it counts as unavailable. */
  connectTimeoutMs?: number;
  /** Server-side limit for one statement (`statement_timeout`). */
  statementTimeoutMs?: number;
  /** Longest wait for a row lock held by another commit (`lock_timeout`). */
  lockTimeoutMs?: number;
  /** Longest wait for `ping()`. */
  pingTimeoutMs?: number;
}

export const DEFAULT_POSTGRES_SETTINGS = Object.freeze({
  servePoolSize: 10,
  readPoolSize: 2,
  serveConnectTimeoutMs: 3000,
  readConnectTimeoutMs: 10_000,
  statementTimeoutMs: 30_000,
  lockTimeoutMs: 10_000,
  pingTimeoutMs: 2000,
  /** A crashed instance's open transaction (and its row locks) is ended by the server after this. */
  idleInTransactionTimeoutMs: 60_000,
  /** Migrations wait for a sibling instance that is migrating the same database. */
  migrationLockTimeoutMs: 60_000,
});

/** Thrown by a readiness probe's work so its transaction rolls back. */
const PROBE_ROLLBACK = new Error('readiness probe done; rolling back');

/** Opens a pool on `url`; in `serve` mode runs the migrations (under an advisory lock) first. */
export async function openPostgresStore(url: string, options: PostgresStoreOptions): Promise<PostgresStore> {
  const location = describePostgresUrl(url);
  const pool = createPool(url, options);
  try {
    if (options.mode === 'serve') {
      await migrate(pool, location, options.logger);
      const sequence = await eventSequence(pool);
      return new PostgresStore(pool, location, options, sequence);
    }
    await checkInletTables(pool, location, options.logger);
    return new PostgresStore(pool, location, options, undefined);
  } catch (error) {
    await pool.end().catch(() => undefined);
    throw openError(error, location, options.mode);
  }
}

/** The URL with its password masked; throws `InvalidDatabaseUrlError` when it does not parse. */
export function describePostgresUrl(url: string): string {
  const masked = maskPostgresUrl(url);
  if (masked === undefined) {
    // The URL is never quoted: it may hold a password.
    throw new InvalidDatabaseUrlError(
      'The PostgreSQL URL does not parse: use postgres://USER:PASSWORD@HOST:PORT/DATABASE (percent-encode special characters in the password).',
    );
  }
  return masked;
}

function createPool(url: string, options: PostgresStoreOptions): pg.Pool {
  const serve = options.mode === 'serve';
  const statementTimeoutMs = options.statementTimeoutMs ?? DEFAULT_POSTGRES_SETTINGS.statementTimeoutMs;
  const config: PoolConfig = {
    connectionString: url.trim(),
    application_name: 'inlet',
    max:
      options.poolSize ??
      (serve ? DEFAULT_POSTGRES_SETTINGS.servePoolSize : DEFAULT_POSTGRES_SETTINGS.readPoolSize),
    connectionTimeoutMillis:
      options.connectTimeoutMs ??
      (serve
        ? DEFAULT_POSTGRES_SETTINGS.serveConnectTimeoutMs
        : DEFAULT_POSTGRES_SETTINGS.readConnectTimeoutMs),
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    statement_timeout: statementTimeoutMs,
    lock_timeout: options.lockTimeoutMs ?? DEFAULT_POSTGRES_SETTINGS.lockTimeoutMs,
    idle_in_transaction_session_timeout: DEFAULT_POSTGRES_SETTINGS.idleInTransactionTimeoutMs,
    // The client-side guard for a server that vanished without closing the socket.
    query_timeout: statementTimeoutMs + 5000,
    // Statements issued together go out together: a group commit sends BEGIN with its reads and its
    // write with COMMIT, two round trips in all. Statements awaited one by one are unaffected.
    pipeline: true,
  };
  const pool = new pg.Pool(config);
  // An idle connection the server closed (restart, pg_terminate_backend) must not crash the process;
  // the pool drops it and the next query opens a new one.
  pool.on('error', (error) => {
    options.logger?.warn({ err: describePostgresError(error) }, 'PostgreSQL closed an idle connection');
  });
  return pool;
}

function openError(error: unknown, location: string, mode: OpenStoreOptions['mode']): Error {
  if (error instanceof DatabaseNotFoundError || error instanceof InvalidDatabaseUrlError) return error;
  // Serve (and migrate) tell a fault that may pass from one that needs a person (CONTRACT §2 retries only the former).
  if (mode === 'serve') return openFailure(error, location);
  if (error instanceof StoreUnavailableError) return error;
  if ((error as { code?: unknown }).code === '3D000') {
    return new DatabaseNotFoundError(`No PostgreSQL database at ${location} (nothing was created).`, {
      cause: error,
    });
  }
  return toStoreError(error, 'opening', location);
}

/** Runs the pending migrations in one transaction that holds an advisory lock: N instances may start at once. */
async function migrate(pool: pg.Pool, location: string, logger: StoreLogger | undefined): Promise<void> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => (broken = error);
  client.on('error', onError);
  try {
    await client.query('BEGIN');
    await client.query(
      `SET LOCAL lock_timeout = ${DEFAULT_POSTGRES_SETTINGS.migrationLockTimeoutMs}; SET LOCAL statement_timeout = 0`,
    );
    // Per schema, so databases holding several Inlet schemas migrate each on its own.
    await client.query(
      "SELECT pg_advisory_xact_lock(hashtextextended('inlet.migrations.' || current_schema(), 0))",
    );
    const connection = schemaConnection(client);
    await assertInletSchema(connection, location);
    const applied = await applyMigrations(connection, POSTGRES_TYPES, location);
    await client.query('COMMIT');
    logAppliedMigrations(logger, location, applied);
  } catch (error) {
    if (broken === undefined && isPostgresUnavailable(error)) broken = error as Error;
    if (broken === undefined) broken = await rollback(client);
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken ?? false);
  }
}

/** The schema checks' and migration runner's view of one connection. */
function schemaConnection(client: PoolClient): SchemaConnection {
  return {
    tables: () => postgresTables(client),
    run: async (sql, params) => {
      if (params === undefined) await client.query(sql);
      else await client.query(numberPlaceholders(sql), params);
    },
    rows: async <Row>(sql: string) => (await client.query<Row & QueryResultRow>(sql)).rows,
  };
}

/** Inlet's tables as the current schema holds them (where Inlet creates its own). */
async function postgresTables(client: PoolClient): Promise<FoundTables> {
  const { rows } = await client.query<{ table_name: string; column_name: string }>(
    `SELECT c.relname AS table_name, a.attname AS column_name
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = current_schema() AND c.relname = ANY($1::text[])`,
    [INLET_TABLE_NAMES],
  );
  const found = new Map<string, Set<string>>();
  for (const row of rows) {
    const columns = found.get(row.table_name) ?? new Set<string>();
    columns.add(row.column_name);
    found.set(row.table_name, columns);
  }
  return found;
}

async function checkInletTables(
  pool: pg.Pool,
  location: string,
  logger: StoreLogger | undefined,
): Promise<void> {
  const missing = (
    await pool.query<{ name: string }>(
      'SELECT t.name FROM unnest($1::text[]) AS t(name) WHERE to_regclass(t.name) IS NULL',
      [INLET_REQUIRED_TABLES],
    )
  ).rows.map((r) => r.name);
  if (missing.length > 0) {
    throw new DatabaseNotFoundError(
      `PostgreSQL database ${location} is not an Inlet database (no ${missing.join(', ')} table; \`inlet serve\` or \`inlet migrate\` creates them).`,
    );
  }
  const applied = await appliedMigrations({
    rows: async <Row>(sql: string) => (await pool.query<Row & QueryResultRow>(sql)).rows,
  });
  warnIfSchemaOlder(applied, location, logger, '`inlet migrate` (or `inlet serve`)');
}

/** The qualified name of `events.seq`'s sequence, as a SQL literal. */
async function eventSequence(pool: pg.Pool): Promise<string> {
  const { rows } = await pool.query<{ name: string | null }>(
    "SELECT pg_get_serial_sequence('events', 'seq') AS name",
  );
  const name = rows[0]?.name;
  if (typeof name !== 'string') throw new Error('The events table has no sequence on its seq column.');
  return pg.escapeLiteral(name);
}

/** The store many Inlet instances share: a `pg` pool, row locks and one transaction per group commit. */
export class PostgresStore extends SqlReadStore implements Store {
  readonly dialect = 'postgres';
  readonly capabilities = POSTGRES_CAPABILITIES;
  readonly location: string;
  readonly mode: OpenStoreOptions['mode'];
  readonly jobs: PostgresJobs;
  /** Reconcile and archive rows (CONTRACT §11). */
  readonly recover: RecoverStore;
  readonly retention: RetentionStore;

  #pool: pg.Pool;
  #writer: PostgresWriter | undefined;
  #pingTimeoutMs: number;
  #closing: Promise<void> | undefined;

  /** Use `openPostgresStore`: it migrates first. */
  constructor(
    pool: pg.Pool,
    location: string,
    options: PostgresStoreOptions,
    eventSequence: string | undefined,
  ) {
    super();
    this.#pool = pool;
    this.location = location;
    this.mode = options.mode;
    this.#writer = eventSequence === undefined ? undefined : new PostgresWriter(eventSequence);
    this.#pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_POSTGRES_SETTINGS.pingTimeoutMs;
    this.jobs = new PostgresJobs({
      transaction: (doing, work) => this.#transaction(doing, work),
      query: (doing, query) => this.#all(doing, query),
      connect: () => this.#connect('listening for transitions'),
    });
    this.recover = createPostgresRecoverStore({
      transaction: (doing, work) => this.#transaction(doing, work),
      query: (doing, query) => this.#all(doing, query),
    });
    this.retention = createPostgresRetentionStore({
      transaction: (doing, work) => this.#transaction(doing, work),
      query: (doing, query) => this.#all(doing, query),
    });
  }

  get commitPaths(): CommitPaths {
    return { ...(this.#writer?.paths ?? { guessed: 0, locked: 0, staleGuesses: 0 }) };
  }

  async commitEvents(events: readonly IncomingEvent[]): Promise<CommitOutcome[]> {
    const writer = this.#writable();
    if (events.length === 0) return [];
    return this.#transaction('committing events', (client) => writer.commitEvents(client, events), {
      ownStatements: true,
    });
  }

  async recordRejections(rows: readonly NewRejection[], limits: RejectionLimits): Promise<void> {
    const writer = this.#writable();
    if (rows.length === 0) return;
    await this.#transaction('recording rejections', (client) =>
      writer.recordRejections(client, rows, limits),
    );
  }

  protected queryRows<Row>(doing: string, query: SqlQuery): Row[] | Promise<Row[]> {
    return this.#all<Row>(doing, query);
  }

  async ping(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new StoreUnavailableError(
              `PostgreSQL database ${this.location} did not answer a ping within ${this.#pingTimeoutMs} ms`,
            ),
          ),
        this.#pingTimeoutMs,
      );
    });
    try {
      await Promise.race([this.#all('answering a ping', { sql: 'SELECT 1', params: [] }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * One delivery through the whole commit path (event, object, transition), then rolled back: the
   * connection, the role's rights on each table and a read-only server all show, and nothing stays.
   */
  async probeWrite(): Promise<void> {
    const writer = this.#writable();
    try {
      await this.#transaction(
        'probing writes',
        async (client) => {
          await writer.commitEvents(client, [readinessProbeEvent()], 'leave-open');
          throw PROBE_ROLLBACK;
        },
        { ownStatements: true },
      );
    } catch (error) {
      if (error !== PROBE_ROLLBACK) throw error;
    }
  }

  async close(): Promise<void> {
    // Waits for checked-out connections: in-flight commits finish first.
    this.#closing ??= this.#pool.end().catch(() => undefined);
    return this.#closing;
  }

  async #connect(doing: string): Promise<PoolClient> {
    this.#assertOpen();
    try {
      return await this.#pool.connect();
    } catch (error) {
      throw toStoreError(error, doing, this.location);
    }
  }

  async #all<Row>(doing: string, query: SqlQuery): Promise<Row[]> {
    this.#assertOpen();
    try {
      const result = await this.#pool.query<Row & QueryResultRow>(
        numberPlaceholders(query.sql),
        query.params,
      );
      return result.rows;
    } catch (error) {
      throw toStoreError(error, doing, this.location);
    }
  }

  #assertOpen(): void {
    if (this.#closing !== undefined)
      throw new StoreUnavailableError(`PostgreSQL database ${this.location} is closed`);
  }

  #writable(): PostgresWriter {
    this.#assertOpen();
    if (this.mode === 'read' || this.#writer === undefined) {
      throw new Error(`PostgreSQL database ${this.location} was opened read-only`);
    }
    return this.#writer;
  }

  #transaction<T>(
    doing: string,
    work: (client: PoolClient) => Promise<T>,
    options?: { ownStatements?: boolean },
  ): Promise<T> {
    return transaction((what) => this.#connect(what), this.location, doing, work, undefined, options);
  }
}
