import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { PoolClient, PoolConfig, QueryResultRow } from 'pg';
import {
  DatabaseNotFoundError,
  foreignSchemaError,
  InvalidDatabaseUrlError,
  newerSchemaError,
  StoreUnavailableError,
} from '../errors.js';
import {
  createSchemaMigrationsSql,
  foreignMigrationsTable,
  foreignSchemaProblem,
  INLET_TABLE_NAMES,
  INSERT_APPLIED_MIGRATION_SQL,
  planMigrations,
  SCHEMA_MIGRATIONS_TABLE,
  SELECT_APPLIED_MIGRATIONS_SQL,
  type DialectTypes,
  type FoundTables,
} from '../migrations.js';
import { foldBatch, type ObjectState } from '../object-state.js';
import type { OpenStoreOptions, StoreLogger } from '../options.js';
import {
  COUNT_PREDICTIONS_SQL,
  deliveriesPerMinuteQuery,
  deliveryMinutesFromRows,
  type DeliveryMinuteRow,
  eventDetailFromRow,
  OBJECT_STATE_COLUMNS,
  objectStateValues,
  type ObjectStateColumn,
  eventFromRow,
  GET_EVENT_SQL,
  GET_PREDICTION_SQL,
  INSERT_REJECTION_SQL,
  insertEventParams,
  insertRejectionParams,
  listEventsQuery,
  listPredictionsQuery,
  GET_REJECTION_SQL,
  listRejectionsQuery,
  numberPlaceholders,
  objectStateFromRow,
  predictionFromRow,
  rejectionFromRow,
  REJECTION_TOTALS_SQL,
  summaryFromRow,
  toNumber,
  toPage,
  TRIM_REJECTIONS_BY_BYTES_SQL,
  TRIM_REJECTIONS_BY_ROWS_SQL,
  type EventDetailRow,
  type EventRow,
  type ObjectStateRow,
  type PredictionRow,
  type RejectionRow,
  type RejectionTotalsRow,
  type SqlQuery,
  type SqlValue,
  type SummaryRow,
  transitionLogOver,
  TRANSITION_COLUMNS,
  newTransitionValues,
} from '../statements.js';
import type { TransitionLog } from '../transition-types.js';
import type {
  CommitOutcome,
  DeliveryMinute,
  EventDetailRecord,
  EventRecord,
  IncomingEvent,
  NewRejection,
  ObjectRecord,
  ObjectSummaryRecord,
  Page,
  PredictionQuery,
  RejectionLimits,
  RejectionRecord,
  SeqQuery,
  Store,
  StoreCapabilities,
} from '../types.js';
import {
  describePostgresError,
  isPostgresUnavailable,
  isRetryableConflict,
  openFailure,
  toStoreError,
} from './postgres-errors.js';
import { readinessProbeEvent } from '../readiness-probe.js';
import { PostgresJobs, TRANSITIONS_CHANNEL } from './postgres-jobs.js';
import type { RecoverStore } from '../recover-types.js';
import type { RetentionStore } from '../retention-types.js';
import { createPostgresRecoverStore } from './postgres-recover.js';
import { createPostgresRetentionStore } from './postgres-retention.js';
import { maskPostgresUrl } from './url.js';

export const POSTGRES_TYPES: DialectTypes = {
  blob: 'BYTEA',
  bigint: 'BIGINT',
  // A sequence never hands a value out twice, so cursors over trimmed rejections stay valid.
  serialPrimaryKey: 'BIGSERIAL PRIMARY KEY',
};

export const POSTGRES_CAPABILITIES: StoreCapabilities = Object.freeze({
  // Row locks let commits run side by side; a few at once keep the pool free for reads and pings.
  maxConcurrentCommits: 4,
  multiInstance: true,
});

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

/** Tries of one commit transaction when PostgreSQL reports a deadlock or serialization failure. */
const COMMIT_ATTEMPTS = 4;
const INLET_TABLES = ['schema_migrations', 'events', 'objects', 'rejections'] as const;
const ROLLBACK_WAIT_MS = 1000;
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
    const found = await postgresTables(client);
    const appliedIds = async () =>
      (await client.query<{ id: unknown }>(SELECT_APPLIED_MIGRATIONS_SQL)).rows.map((r) => toNumber(r.id));
    // Its own columns first: the applied ids are read from it.
    const problem =
      foreignMigrationsTable(found) ??
      foreignSchemaProblem(found, found.has(SCHEMA_MIGRATIONS_TABLE) ? await appliedIds() : []);
    if (problem !== undefined) throw foreignSchemaError(location, problem);
    await client.query(createSchemaMigrationsSql(POSTGRES_TYPES));
    const applied = await appliedIds();
    const plan = planMigrations(applied);
    if (plan.unknown.length > 0) throw newerSchemaError(location, plan.unknown);
    for (const migration of plan.pending) {
      for (const statement of migration.up(POSTGRES_TYPES)) await client.query(statement);
      await client.query(numberPlaceholders(INSERT_APPLIED_MIGRATION_SQL), [
        migration.id,
        migration.name,
        Date.now(),
      ]);
    }
    await client.query('COMMIT');
    if (plan.pending.length > 0) {
      logger?.info({ location, migrations: plan.pending.map((m) => m.id) }, 'Applied database migrations');
    }
  } catch (error) {
    if (broken === undefined && isPostgresUnavailable(error)) broken = error as Error;
    if (broken === undefined) broken = await rollback(client);
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(broken ?? false);
  }
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
      [INLET_TABLES],
    )
  ).rows.map((r) => r.name);
  if (missing.length > 0) {
    throw new DatabaseNotFoundError(
      `PostgreSQL database ${location} is not an Inlet database (no ${missing.join(', ')} table; \`inlet serve\` or \`inlet migrate\` creates them).`,
    );
  }
  const applied = (await pool.query<{ id: unknown }>(SELECT_APPLIED_MIGRATIONS_SQL)).rows.map((r) =>
    toNumber(r.id),
  );
  const plan = planMigrations(applied);
  if (plan.pending.length > 0) {
    logger?.warn(
      { location, pending: plan.pending.map((m) => m.id) },
      'Database schema is older than this Inlet; run `inlet migrate` (or `inlet serve`) once to migrate it',
    );
  }
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

// ---- commit path: PostgreSQL-only statements (row locks, upserts, arrays) ----

const EVENT_COLUMNS = [
  ['delivery_key', 'text'],
  ['object_id', 'text'],
  ['status', 'text'],
  ['scheme', 'text'],
  ['received_at', 'bigint'],
  ['webhook_ts', 'bigint'],
  ['headers', 'text'],
  ['body', 'bytea'],
  ['duplicates', 'integer'],
] as const;
const EVENT_COLUMN_LIST = EVENT_COLUMNS.map(([name]) => name).join(', ');

/**
 * Inserts each distinct event, or counts it as a duplicate when its key is stored already (by an earlier
 * batch or by another instance right now: the unique index makes us wait for that commit). Rows are
 * written in key order so two instances committing overlapping batches cannot deadlock; `seq` is drawn
 * in arrival order first, so events stay listed in the order received. `inserted` is false for keys
 * that were already there.
 */
function upsertEventsQuery(
  events: readonly IncomingEvent[],
  occurrences: ReadonlyMap<string, number>,
  sequence: string,
): SqlQuery {
  const params: SqlValue[] = [];
  const rows = events.map((event) => {
    const values = [...insertEventParams(event), (occurrences.get(event.key) ?? 1) - 1];
    const cells = values.map((value, i) => {
      params.push(value);
      return `$${params.length}::${EVENT_COLUMNS[i]?.[1] ?? 'text'}`;
    });
    return `(${cells.join(', ')})`;
  });
  // `incoming` is read twice, so PostgreSQL computes it (and each nextval) exactly once.
  const sql = `WITH incoming AS (
  SELECT nextval(${sequence}::regclass) AS seq, v.* FROM (VALUES ${rows.join(',\n  ')}) AS v (${EVENT_COLUMN_LIST})
), stored AS (
  INSERT INTO events (seq, ${EVENT_COLUMN_LIST}, conflict)
  SELECT seq, ${EVENT_COLUMN_LIST}, 0 FROM incoming ORDER BY delivery_key
  ON CONFLICT (delivery_key) DO UPDATE SET duplicates = events.duplicates + excluded.duplicates + 1
  RETURNING seq, delivery_key
)
SELECT stored.delivery_key, stored.seq = incoming.seq AS inserted FROM stored JOIN incoming USING (delivery_key)`;
  return { sql, params };
}

const STATE_COLUMN_LIST = OBJECT_STATE_COLUMNS.join(', ');

/** Locks in id order, as every instance does: commits over the same objects queue rather than deadlock. */
const LOCK_OBJECTS_SQL = `SELECT ${STATE_COLUMN_LIST} FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/**
 * A row for each object seen for the first time, locked by this transaction until the fold below
 * overwrites it. `ON CONFLICT DO NOTHING` waits for another instance creating the same object.
 */
const INSERT_OBJECT_PLACEHOLDERS_SQL = `INSERT INTO objects (${STATE_COLUMN_LIST}, summary)
  SELECT id, 'prediction', '', -1, NULL, 0, 0, 'other', 0, '', 0, 0, 0, 0, NULL, '{}'
  FROM unnest($1::text[]) AS t(id) ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id`;

const POSTGRES_STATE_TYPES: Record<ObjectStateColumn, string> = {
  id: 'text',
  kind: 'text',
  status: 'text',
  status_rank: 'integer',
  model: 'text',
  observed_at: 'bigint',
  logs_len: 'bigint',
  output_kind: 'text',
  output_len: 'bigint',
  winning_event_key: 'text',
  event_count: 'bigint',
  conflict_count: 'bigint',
  first_received_at: 'bigint',
  last_received_at: 'bigint',
  output_digest: 'text',
};

/** `objectStateValues()` order, then the summary (null when the folded body did not change). */
const OBJECT_UPDATE_COLUMNS: readonly (readonly [string, string])[] = [
  ...OBJECT_STATE_COLUMNS.map((name) => [name, POSTGRES_STATE_TYPES[name]] as const),
  ['summary', 'text'],
];

const UPDATE_OBJECTS_SQL = `UPDATE objects AS o SET
  ${OBJECT_UPDATE_COLUMNS.slice(1)
    .map(([name]) =>
      name === 'summary' ? 'summary = COALESCE(v.summary, o.summary)' : `${name} = v.${name}`,
    )
    .join(', ')}
  FROM unnest(${OBJECT_UPDATE_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
    AS v (${OBJECT_UPDATE_COLUMNS.map(([name]) => name).join(', ')})
  WHERE o.id = v.id`;

/** The same, also flagging the conflicting events (rows this transaction inserted). */
const UPDATE_OBJECTS_AND_FLAG_CONFLICTS_SQL = `WITH flagged AS (
  UPDATE events SET conflict = 1 WHERE delivery_key = ANY($${OBJECT_UPDATE_COLUMNS.length + 1}::text[])
)
${UPDATE_OBJECTS_SQL}`;

function updateObjectsParams(
  states: Iterable<ObjectState>,
  summaries: ReadonlyMap<string, string>,
): SqlValue[][] {
  const columns: SqlValue[][] = OBJECT_UPDATE_COLUMNS.map(() => []);
  for (const state of states) {
    const row: SqlValue[] = [...objectStateValues(state), summaries.get(state.id) ?? null];
    row.forEach((value, i) => columns[i]?.push(value));
  }
  return columns;
}

function valuesList(rowCount: number, width: number): string {
  const rows: string[] = [];
  for (let r = 0; r < rowCount; r++) {
    const cells: string[] = [];
    for (let c = 1; c <= width; c++) cells.push(`$${r * width + c}`);
    rows.push(`(${cells.join(', ')})`);
  }
  return rows.join(', ');
}

const TRANSITION_TYPES: Record<(typeof TRANSITION_COLUMNS)[number], string> = {
  id: 'text',
  type: 'text',
  object_id: 'text',
  kind: 'text',
  model: 'text',
  status: 'text',
  event_key: 'text',
  recorded_at: 'bigint',
  event_count: 'bigint',
  first_received_at: 'bigint',
  last_received_at: 'bigint',
};

/** Held until the transaction ends; the schema is part of the key, so schemas do not wait on each other. */
const TRANSITIONS_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended('inlet.transitions.' || current_schema(), 0))`;

/** The batch's transitions in one statement, then a wake-up for every instance's runner (sent at COMMIT). */
const INSERT_TRANSITIONS_SQL = `WITH inserted AS (
  INSERT INTO transitions (${TRANSITION_COLUMNS.join(', ')})
  SELECT * FROM unnest(${TRANSITION_COLUMNS.map((c, i) => `$${i + 1}::${TRANSITION_TYPES[c]}[]`).join(', ')})
  RETURNING seq
)
SELECT pg_notify('${TRANSITIONS_CHANNEL}', MAX(seq)::text) FROM inserted`;

const REJECTION_VALUES_SQL = INSERT_REJECTION_SQL.slice(
  0,
  INSERT_REJECTION_SQL.indexOf('VALUES') + 'VALUES'.length,
);
const REJECTION_WIDTH = 8;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The store many Inlet instances share: a `pg` pool, row locks and one transaction per group commit. */
export class PostgresStore implements Store {
  readonly dialect = 'postgres';
  readonly capabilities = POSTGRES_CAPABILITIES;
  readonly location: string;
  readonly mode: OpenStoreOptions['mode'];
  readonly transitions: TransitionLog;
  readonly jobs: PostgresJobs;
  /** Reconcile and archive rows (CONTRACT §11). */
  readonly recover: RecoverStore;
  readonly retention: RetentionStore;

  #pool: pg.Pool;
  #eventSequence: string | undefined;
  #pingTimeoutMs: number;
  #closing: Promise<void> | undefined;

  /** Use `openPostgresStore`: it migrates first. */
  constructor(
    pool: pg.Pool,
    location: string,
    options: PostgresStoreOptions,
    eventSequence: string | undefined,
  ) {
    this.#pool = pool;
    this.location = location;
    this.mode = options.mode;
    this.#eventSequence = eventSequence;
    this.#pingTimeoutMs = options.pingTimeoutMs ?? DEFAULT_POSTGRES_SETTINGS.pingTimeoutMs;
    this.transitions = transitionLogOver((doing, query) => this.#all(doing, query));
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

  async commitEvents(events: readonly IncomingEvent[]): Promise<CommitOutcome[]> {
    const sequence = this.#writableSequence();
    if (events.length === 0) return [];
    return this.#transaction('committing events', (client) => this.#commitBatch(client, events, sequence));
  }

  async recordRejections(rows: readonly NewRejection[], limits: RejectionLimits): Promise<void> {
    this.#writableSequence();
    if (rows.length === 0) return;
    await this.#transaction('recording rejections', async (client) => {
      const params = rows.flatMap((row) =>
        insertRejectionParams(`rej_${randomBytes(12).toString('base64url')}`, row),
      );
      await client.query(`${REJECTION_VALUES_SQL} ${valuesList(rows.length, REJECTION_WIDTH)}`, params);
      const totals = (await client.query<RejectionTotalsRow & QueryResultRow>(REJECTION_TOTALS_SQL)).rows[0];
      if (totals === undefined) return;
      if (toNumber(totals.row_count) > limits.maxRows) {
        await client.query(numberPlaceholders(TRIM_REJECTIONS_BY_ROWS_SQL), [limits.maxRows]);
      }
      if (toNumber(totals.body_bytes) > limits.maxBodyBytes) {
        await client.query(numberPlaceholders(TRIM_REJECTIONS_BY_BYTES_SQL), [limits.maxBodyBytes]);
      }
    });
  }

  async listPredictions(query: PredictionQuery): Promise<Page<ObjectSummaryRecord>> {
    const rows = await this.#all<SummaryRow>('listing predictions', listPredictionsQuery(query));
    return toPage(rows, query.limit, summaryFromRow);
  }

  async countPredictions(): Promise<number> {
    const [row] = await this.#all<{ n: unknown }>('counting predictions', {
      sql: COUNT_PREDICTIONS_SQL,
      params: [],
    });
    return toNumber(row?.n ?? 0);
  }

  async getPrediction(id: string): Promise<ObjectRecord | undefined> {
    const [row] = await this.#all<PredictionRow>('reading a prediction', {
      sql: GET_PREDICTION_SQL,
      params: [id],
    });
    return row === undefined ? undefined : predictionFromRow(row);
  }

  async listEvents(objectId: string, query: SeqQuery): Promise<Page<EventRecord>> {
    const rows = await this.#all<EventRow>('listing events', listEventsQuery(objectId, query));
    return toPage(rows, query.limit, eventFromRow);
  }

  async getEvent(key: string): Promise<EventDetailRecord | undefined> {
    const [row] = await this.#all<EventDetailRow>('reading an event', { sql: GET_EVENT_SQL, params: [key] });
    return row === undefined ? undefined : eventDetailFromRow(row);
  }

  async listRejections(query: SeqQuery): Promise<Page<RejectionRecord>> {
    const rows = await this.#all<RejectionRow>('listing rejections', listRejectionsQuery(query));
    return toPage(rows, query.limit, rejectionFromRow);
  }

  async getRejection(id: string): Promise<RejectionRecord | undefined> {
    const [row] = await this.#all<RejectionRow>('reading a rejection', {
      sql: GET_REJECTION_SQL,
      params: [id],
    });
    return row === undefined ? undefined : rejectionFromRow(row);
  }

  async deliveriesPerMinute(sinceMs: number, untilMs: number): Promise<DeliveryMinute[]> {
    const rows = await this.#all<DeliveryMinuteRow>(
      'counting deliveries per minute',
      deliveriesPerMinuteQuery(sinceMs, untilMs),
    );
    return deliveryMinutesFromRows(rows);
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
    const sequence = this.#writableSequence();
    try {
      await this.#transaction('probing writes', async (client) => {
        await this.#commitBatch(client, [readinessProbeEvent()], sequence);
        throw PROBE_ROLLBACK;
      });
    } catch (error) {
      if (error !== PROBE_ROLLBACK) throw error;
    }
  }

  async close(): Promise<void> {
    // Waits for checked-out connections: in-flight commits finish first.
    this.#closing ??= this.#pool.end().catch(() => undefined);
    return this.#closing;
  }

  async #commitBatch(
    client: PoolClient,
    events: readonly IncomingEvent[],
    sequence: string,
  ): Promise<CommitOutcome[]> {
    const firstIndex = new Map<string, number>();
    const occurrences = new Map<string, number>();
    const distinct: IncomingEvent[] = [];
    events.forEach((event, i) => {
      if (!firstIndex.has(event.key)) {
        firstIndex.set(event.key, i);
        distinct.push(event);
      }
      occurrences.set(event.key, (occurrences.get(event.key) ?? 0) + 1);
    });

    const upsert = upsertEventsQuery(distinct, occurrences, sequence);
    const stored = await client.query<{ delivery_key: string; inserted: boolean }>(upsert.sql, upsert.params);
    const inserted = new Set(stored.rows.filter((r) => r.inserted).map((r) => r.delivery_key));
    const isNew = (event: IncomingEvent, i: number) =>
      inserted.has(event.key) && firstIndex.get(event.key) === i;

    const objectIds = [...new Set(events.filter(isNew).map((e) => e.object.id))];
    const states = await this.#lockObjects(client, objectIds);

    const { outcomes, summaries, conflicts, transitions } = foldBatch(events, isNew, states);

    if (objectIds.length > 0) {
      const params: unknown[] = updateObjectsParams(
        objectIds.map((id) => states.get(id)).filter((s): s is ObjectState => s !== undefined),
        summaries,
      );
      if (conflicts.length > 0) {
        await client.query(UPDATE_OBJECTS_AND_FLAG_CONFLICTS_SQL, [...params, conflicts]);
      } else {
        await client.query(UPDATE_OBJECTS_SQL, params);
      }
    }
    if (transitions.length > 0) {
      // Serialised across instances until COMMIT, so `seq` follows commit order: a reader that has seen
      // seq N never later finds a committed row below N (CONTRACT §8's consumers read "after seq").
      await client.query(TRANSITIONS_LOCK_SQL);
      const columns: SqlValue[][] = TRANSITION_COLUMNS.map(() => []);
      const recordedAtMs = Date.now();
      for (const transition of transitions) {
        newTransitionValues(transition, recordedAtMs).forEach((value, i) => columns[i]?.push(value));
      }
      await client.query(INSERT_TRANSITIONS_SQL, columns);
    }
    return outcomes;
  }

  /**
   * Locks the objects' rows, creating placeholders for new ones, and returns the existing states (new
   * objects have none). Existing rows come first: that is the common case and costs one round trip.
   */
  async #lockObjects(client: PoolClient, ids: readonly string[]): Promise<Map<string, ObjectState>> {
    const states = new Map<string, ObjectState>();
    if (ids.length === 0) return states;
    const lockExisting = async (wanted: readonly string[]) => {
      const { rows } = await client.query<ObjectStateRow & QueryResultRow>(LOCK_OBJECTS_SQL, [wanted]);
      for (const row of rows) states.set(row.id, objectStateFromRow(row));
    };
    await lockExisting(ids);
    const missing = ids.filter((id) => !states.has(id));
    if (missing.length === 0) return states;
    const created = new Set(
      (await client.query<{ id: string }>(INSERT_OBJECT_PLACEHOLDERS_SQL, [missing])).rows.map((r) => r.id),
    );
    // Created by another instance between our two statements: lock the row it committed.
    const raced = missing.filter((id) => !created.has(id));
    if (raced.length > 0) await lockExisting(raced);
    const lost = raced.filter((id) => !states.has(id));
    if (lost.length > 0) throw new Error(`Objects ${lost.join(', ')} could neither be locked nor created`);
    return states;
  }

  async #transaction<T>(doing: string, work: (client: PoolClient) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#connect(doing);
      let broken: Error | undefined;
      // A connection lost between two statements emits here, not on a query.
      const onError = (error: Error) => (broken = error);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        if (broken === undefined && isPostgresUnavailable(error)) broken = error as Error;
        if (broken === undefined) broken = await rollback(client);
        if (isRetryableConflict(error) && attempt < COMMIT_ATTEMPTS) {
          // Another instance won a lock race: run the whole transaction again after a short, jittered pause.
          await delay(5 * attempt + Math.random() * 20);
          continue;
        }
        throw toStoreError(error, doing, this.location);
      } finally {
        client.removeListener('error', onError);
        // A broken connection is closed, never handed out again.
        client.release(broken ?? false);
      }
    }
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

  #writableSequence(): string {
    this.#assertOpen();
    if (this.mode === 'read' || this.#eventSequence === undefined) {
      throw new Error(`PostgreSQL database ${this.location} was opened read-only`);
    }
    return this.#eventSequence;
  }
}

/** Ends a failed transaction; answers the error when the connection is no longer usable. */
async function rollback(client: PoolClient): Promise<Error | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.query('ROLLBACK'),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('ROLLBACK did not answer')), ROLLBACK_WAIT_MS);
      }),
    ]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    clearTimeout(timer);
  }
}
