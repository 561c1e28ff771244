import { foreignSchemaError, newerSchemaError } from './errors.js';
import {
  createSchemaMigrationsSql,
  foreignMigrationsTable,
  foreignSchemaProblem,
  INSERT_APPLIED_MIGRATION_SQL,
  planMigrations,
  SCHEMA_MIGRATIONS_TABLE,
  SELECT_APPLIED_MIGRATIONS_SQL,
  type DialectTypes,
  type FoundTables,
} from './migrations.js';
import type { StoreLogger } from './options.js';
import { toNumber, type SqlValue } from './statements.js';

/** The tables a database must hold to be read as an Inlet database. */
export const INLET_REQUIRED_TABLES = ['schema_migrations', 'events', 'objects', 'rejections'] as const;

/** What the schema checks and the migration runner need of a dialect's connection. */
export interface SchemaConnection {
  /** Inlet's tables as the database holds them, with their columns (none in a new database). */
  tables(): Promise<FoundTables>;
  /** Runs one statement (`?` placeholders). */
  run(sql: string, params?: SqlValue[]): Promise<void>;
  /** The rows of one query without parameters. */
  rows<Row>(sql: string): Promise<Row[]>;
}

/** The migration ids `schema_migrations` records. */
export async function appliedMigrations(connection: Pick<SchemaConnection, 'rows'>): Promise<number[]> {
  return (await connection.rows<{ id: unknown }>(SELECT_APPLIED_MIGRATIONS_SQL)).map((r) => toNumber(r.id));
}

/** Throws `foreignSchemaError` when the tables found are not Inlet's (someone else's are left as they are). */
export async function assertInletSchema(connection: SchemaConnection, location: string): Promise<void> {
  const found = await connection.tables();
  // Its own columns first: the applied ids are read from it.
  const problem =
    foreignMigrationsTable(found) ??
    foreignSchemaProblem(
      found,
      found.has(SCHEMA_MIGRATIONS_TABLE) ? await appliedMigrations(connection) : [],
    );
  if (problem !== undefined) throw foreignSchemaError(location, problem);
}

/**
 * Runs the pending migrations on `connection`, inside the caller's transaction, and answers their
 * ids; throws `newerSchemaError` when the database records migrations this Inlet does not know.
 */
export async function applyMigrations(
  connection: SchemaConnection,
  types: DialectTypes,
  location: string,
): Promise<number[]> {
  await connection.run(createSchemaMigrationsSql(types));
  const plan = planMigrations(await appliedMigrations(connection));
  if (plan.unknown.length > 0) throw newerSchemaError(location, plan.unknown);
  for (const migration of plan.pending) {
    for (const statement of migration.up(types)) await connection.run(statement);
    await connection.run(INSERT_APPLIED_MIGRATION_SQL, [migration.id, migration.name, Date.now()]);
  }
  return plan.pending.map((m) => m.id);
}

export function logAppliedMigrations(
  logger: StoreLogger | undefined,
  location: string,
  applied: readonly number[],
): void {
  if (applied.length > 0) logger?.info({ location, migrations: applied }, 'Applied database migrations');
}

/** Warns when a database opened to read misses migrations; `howToMigrate` names the command. */
export function warnIfSchemaOlder(
  applied: readonly number[],
  location: string,
  logger: StoreLogger | undefined,
  howToMigrate: string,
): void {
  const plan = planMigrations(applied);
  if (plan.pending.length > 0) {
    logger?.warn(
      { location, pending: plan.pending.map((m) => m.id) },
      `Database schema is older than this Inlet; run ${howToMigrate} once to migrate it`,
    );
  }
}
