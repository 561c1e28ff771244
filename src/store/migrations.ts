/**
 * One portable migration set: every dialect runs the same statements, with the few type spellings
 * that differ supplied by `DialectTypes`. Migrations are append-only: never edit one that shipped.
 */

/** Type spellings that differ between dialects. */
export interface DialectTypes {
  /** Raw bytes: `BLOB` / `BYTEA`. */
  readonly blob: string;
  /** 64-bit integer (epoch milliseconds): `INTEGER` / `BIGINT`. */
  readonly bigint: string;
  /** Auto-numbered 64-bit primary key column type and constraint. */
  readonly serialPrimaryKey: string;
}

export interface Migration {
  /** Strictly increasing; recorded in `schema_migrations`. */
  readonly id: number;
  readonly name: string;
  up(t: DialectTypes): readonly string[];
}

export const SCHEMA_MIGRATIONS_TABLE = 'schema_migrations';

export function createSchemaMigrationsSql(t: DialectTypes): string {
  return `CREATE TABLE IF NOT EXISTS ${SCHEMA_MIGRATIONS_TABLE} (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  applied_at ${t.bigint} NOT NULL
)`;
}

export const SELECT_APPLIED_MIGRATIONS_SQL = `SELECT id FROM ${SCHEMA_MIGRATIONS_TABLE} ORDER BY id`;
export const INSERT_APPLIED_MIGRATION_SQL = `INSERT INTO ${SCHEMA_MIGRATIONS_TABLE} (id, name, applied_at) VALUES (?, ?, ?)`;

export const MIGRATIONS: readonly Migration[] = [
  {
    id: 1,
    name: 'events_objects_rejections',
    up: (t) => [
      // Booleans are INTEGER 0/1 in every dialect so the statements stay identical.
      `CREATE TABLE events (
  seq ${t.serialPrimaryKey},
  delivery_key TEXT NOT NULL UNIQUE,
  object_id TEXT NOT NULL,
  status TEXT NOT NULL,
  scheme TEXT NOT NULL,
  received_at ${t.bigint} NOT NULL,
  webhook_ts ${t.bigint},
  headers TEXT NOT NULL,
  body ${t.blob} NOT NULL,
  duplicates INTEGER NOT NULL DEFAULT 0,
  conflict INTEGER NOT NULL DEFAULT 0
)`,
      'CREATE INDEX events_object_seq ON events (object_id, seq)',
      `CREATE TABLE objects (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  status_rank INTEGER NOT NULL,
  model TEXT,
  observed_at ${t.bigint} NOT NULL,
  logs_len ${t.bigint} NOT NULL,
  output_kind TEXT NOT NULL,
  output_len ${t.bigint} NOT NULL,
  winning_event_key TEXT NOT NULL,
  summary TEXT NOT NULL,
  event_count ${t.bigint} NOT NULL,
  conflict_count ${t.bigint} NOT NULL,
  first_received_at ${t.bigint} NOT NULL,
  last_received_at ${t.bigint} NOT NULL
)`,
      'CREATE INDEX objects_recent ON objects (last_received_at DESC, id DESC)',
      'CREATE INDEX objects_status_recent ON objects (status, last_received_at, id)',
      'CREATE INDEX objects_model_recent ON objects (model, last_received_at, id)',
      `CREATE TABLE rejections (
  seq ${t.serialPrimaryKey},
  id TEXT NOT NULL UNIQUE,
  received_at ${t.bigint} NOT NULL,
  code TEXT NOT NULL,
  message TEXT NOT NULL,
  remote_address TEXT NOT NULL,
  headers TEXT NOT NULL,
  body ${t.blob} NOT NULL,
  body_len ${t.bigint} NOT NULL
)`,
      // Covers the trim's count and running byte total without touching the bodies.
      'CREATE INDEX rejections_seq_body_len ON rejections (seq, body_len)',
    ],
  },
  {
    id: 2,
    name: 'transitions',
    up: (t) => [
      // One row per accepted change of a folded state, appended in the ingest transaction. The folded
      // object right after the change is the body of the event that caused it (joined, not copied).
      `CREATE TABLE transitions (
  seq ${t.serialPrimaryKey},
  id TEXT NOT NULL UNIQUE,
  type TEXT NOT NULL,
  object_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  model TEXT,
  status TEXT NOT NULL,
  event_key TEXT NOT NULL,
  recorded_at ${t.bigint} NOT NULL,
  event_count ${t.bigint} NOT NULL,
  first_received_at ${t.bigint} NOT NULL,
  last_received_at ${t.bigint} NOT NULL
)`,
      'CREATE INDEX transitions_object_seq ON transitions (object_id, seq)',
      'CREATE INDEX transitions_recorded ON transitions (recorded_at, seq)',
      // A digest of the folded output, so a change of output is told apart from the same output again
      // (NULL on rows folded before this migration: their output length is compared instead).
      'ALTER TABLE objects ADD COLUMN output_digest TEXT',
    ],
  },
  {
    id: 3,
    name: 'consumers_messages_attempts',
    up: (t) => [
      // One row per consumer; `position` is the seq of the last transition fanned out into messages.
      `CREATE TABLE consumers (
  name TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  position ${t.bigint} NOT NULL,
  enabled INTEGER NOT NULL DEFAULT 1,
  disabled_reason TEXT,
  secret TEXT,
  config_hash TEXT NOT NULL,
  config TEXT NOT NULL,
  created_at ${t.bigint} NOT NULL,
  updated_at ${t.bigint} NOT NULL,
  last_delivered_at ${t.bigint},
  last_error TEXT
)`,
      `CREATE TABLE messages (
  seq ${t.serialPrimaryKey},
  id TEXT NOT NULL UNIQUE,
  consumer TEXT NOT NULL,
  transition_seq ${t.bigint} NOT NULL,
  transition_id TEXT NOT NULL,
  object_id TEXT NOT NULL,
  type TEXT NOT NULL,
  recorded_at ${t.bigint} NOT NULL,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  round_attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at ${t.bigint},
  lease_owner TEXT,
  lease_until ${t.bigint},
  last_status INTEGER,
  last_error TEXT,
  created_at ${t.bigint} NOT NULL,
  delivered_at ${t.bigint}
)`,
      // Partial indexes keep the runner's scans on pending rows, however many were delivered.
      "CREATE INDEX messages_due ON messages (consumer, next_attempt_at) WHERE state = 'pending'",
      "CREATE INDEX messages_pending_object ON messages (consumer, object_id, transition_seq) WHERE state = 'pending'",
      'CREATE INDEX messages_leased ON messages (consumer, lease_until) WHERE lease_until IS NOT NULL',
      'CREATE INDEX messages_consumer_seq ON messages (consumer, seq)',
      'CREATE INDEX messages_state_seq ON messages (state, consumer, seq)',
      'CREATE INDEX messages_object_seq ON messages (object_id, seq)',
      `CREATE TABLE message_attempts (
  seq ${t.serialPrimaryKey},
  message_id TEXT NOT NULL,
  at ${t.bigint} NOT NULL,
  status INTEGER,
  duration_ms ${t.bigint} NOT NULL,
  error TEXT
)`,
      'CREATE INDEX message_attempts_message ON message_attempts (message_id, seq)',
    ],
  },
  {
    id: 4,
    name: 'tracked_objects_archive_files',
    up: (t) => [
      // Objects reconcile polls: created by `inlet predict`, or gone quiet before ending.
      `CREATE TABLE tracked_objects (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  source TEXT NOT NULL,
  created_at ${t.bigint} NOT NULL,
  last_polled_at ${t.bigint},
  next_poll_at ${t.bigint} NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  done INTEGER NOT NULL DEFAULT 0
)`,
      'CREATE INDEX tracked_objects_due ON tracked_objects (done, next_poll_at)',
      // One row per URL in a succeeded output; the bytes live in the archive store under sha256.
      `CREATE TABLE archive_files (
  prediction_id TEXT NOT NULL,
  path TEXT NOT NULL,
  source_url TEXT NOT NULL,
  sha256 TEXT,
  size ${t.bigint},
  content_type TEXT,
  archived_at ${t.bigint},
  error TEXT,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at ${t.bigint},
  PRIMARY KEY (prediction_id, path)
)`,
      'CREATE INDEX archive_files_due ON archive_files (next_attempt_at)',
      'CREATE INDEX archive_files_sha256 ON archive_files (sha256)',
      // Succeeded objects whose output was looked at (with or without URLs in it).
      `CREATE TABLE archive_scans (
  prediction_id TEXT PRIMARY KEY,
  scanned_at ${t.bigint} NOT NULL,
  files INTEGER NOT NULL
)`,
    ],
  },
  {
    id: 5,
    name: 'deliveries_by_time',
    // The dashboard's deliveries-per-minute chart reads recent rows by time, not the whole tables.
    up: () => [
      'CREATE INDEX events_received ON events (received_at)',
      'CREATE INDEX rejections_received ON rejections (received_at)',
    ],
  },
];

export interface MigrationPlan {
  pending: Migration[];
  /** Applied ids this code does not know: the database was migrated by a newer Inlet. */
  unknown: number[];
}

export function planMigrations(appliedIds: Iterable<number>, migrations = MIGRATIONS): MigrationPlan {
  const applied = new Set(appliedIds);
  const known = new Set(migrations.map((m) => m.id));
  return {
    pending: migrations.filter((m) => !applied.has(m.id)),
    unknown: [...applied].filter((id) => !known.has(id)).sort((a, b) => a - b),
  };
}

/** What a migration's statements create: whole tables, and columns added to tables already there. */
interface SchemaChanges {
  tables: Map<string, string[]>;
  addedColumns: [table: string, column: string][];
}

// The type spellings do not matter for names; any dialect's will do.
const NAME_TYPES: DialectTypes = { blob: 'BLOB', bigint: 'BIGINT', serialPrimaryKey: 'BIGINT PRIMARY KEY' };
const CREATE_TABLE = /^CREATE TABLE (?:IF NOT EXISTS )?(\w+) \(([\s\S]*)\)$/;
const ADD_COLUMN = /^ALTER TABLE (\w+) ADD COLUMN (\w+)/;
const TABLE_CONSTRAINTS = new Set(['PRIMARY', 'UNIQUE', 'FOREIGN', 'CHECK', 'CONSTRAINT']);

function schemaChanges(statements: readonly string[]): SchemaChanges {
  const changes: SchemaChanges = { tables: new Map(), addedColumns: [] };
  for (const statement of statements) {
    const created = CREATE_TABLE.exec(statement.trim());
    if (created !== null) {
      const columns = created[2]!
        .split(/,\s*\n/)
        .map((line) => line.trim().split(/\s+/)[0] ?? '')
        .filter((word) => word !== '' && !TABLE_CONSTRAINTS.has(word.toUpperCase()));
      changes.tables.set(created[1]!, columns);
      continue;
    }
    const added = ADD_COLUMN.exec(statement.trim());
    if (added !== null) changes.addedColumns.push([added[1]!, added[2]!]);
  }
  return changes;
}

/** The tables (and their columns) Inlet's schema has once `migrations` are applied. */
export function schemaColumns(migrations: readonly Migration[] = MIGRATIONS): Map<string, Set<string>> {
  const schema = new Map<string, Set<string>>();
  const apply = ({ tables, addedColumns }: SchemaChanges) => {
    for (const [table, columns] of tables) schema.set(table, new Set(columns));
    for (const [table, column] of addedColumns) schema.get(table)?.add(column);
  };
  apply(schemaChanges([createSchemaMigrationsSql(NAME_TYPES)]));
  for (const migration of migrations) apply(schemaChanges(migration.up(NAME_TYPES)));
  return schema;
}

/** Every table name Inlet's schema uses, for reading what a database holds before migrating it. */
export const INLET_TABLE_NAMES: readonly string[] = [...schemaColumns().keys()];

/** Tables found in a database: name → its column names (absent: no such table). */
export type FoundTables = ReadonlyMap<string, ReadonlySet<string>>;

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 4).join(', ');
  return names.length > 4 ? `${shown}, …` : shown;
}

/** Whether `schema_migrations` is Inlet's own (checked before reading the applied ids from it). */
export function foreignMigrationsTable(found: FoundTables): string | undefined {
  const have = found.get(SCHEMA_MIGRATIONS_TABLE);
  if (have === undefined) return undefined;
  const missing = [...(schemaColumns([]).get(SCHEMA_MIGRATIONS_TABLE) ?? [])].filter((c) => !have.has(c));
  return missing.length === 0
    ? undefined
    : `its table "${SCHEMA_MIGRATIONS_TABLE}" has other columns (no ${listed(missing)})`;
}

/**
 * What makes the tables found not the Inlet schema that `applied` says they are (so migrating would
 * fail or write into someone else's tables), in words; undefined when they are Inlet's.
 */
export function foreignSchemaProblem(
  found: FoundTables,
  applied: readonly number[],
  migrations: readonly Migration[] = MIGRATIONS,
): string | undefined {
  const foreignTable = foreignMigrationsTable(found);
  if (foreignTable !== undefined) return foreignTable;
  const done = new Set(applied);
  for (const [table, columns] of schemaColumns(migrations.filter((m) => done.has(m.id)))) {
    if (table === SCHEMA_MIGRATIONS_TABLE && done.size === 0) continue;
    const have = found.get(table);
    if (have === undefined) return `it has no table "${table}", which its recorded migrations created`;
    const missing = [...columns].filter((c) => !have.has(c));
    if (missing.length > 0) return `its table "${table}" has other columns (no ${listed(missing)})`;
  }
  for (const migration of migrations.filter((m) => !done.has(m.id))) {
    const { tables, addedColumns } = schemaChanges(migration.up(NAME_TYPES));
    for (const table of tables.keys()) {
      if (found.has(table)) return `it has a table "${table}" that Inlet did not create`;
    }
    for (const [table, column] of addedColumns) {
      if (found.get(table)?.has(column) === true) {
        return `its table "${table}" has a column "${column}" that Inlet did not add`;
      }
    }
  }
  return undefined;
}
