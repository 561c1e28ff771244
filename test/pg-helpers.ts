/**
 * Fresh PostgreSQL databases for tests. The server is `INLET_TEST_DATABASE_URL` (never `DATABASE_URL`,
 * which configures `serve`); each test file makes its own database and drops it when done, so runs
 * never collide and leave nothing behind.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { QueryResult, QueryResultRow } from 'pg';

export const TEST_SERVER_URL =
  process.env.INLET_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

export type Probe = { ok: true; adminUrl: string } | { ok: false; reason: string };

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

async function runOnce<R extends QueryResultRow = QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<QueryResult<R>> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query<R>(sql, params);
  } finally {
    await client.end().catch(() => undefined);
  }
}

let probed: Promise<Probe> | undefined;

/**
 * Whether a server answers at the test URL, and a database on it that can run `CREATE DATABASE`
 * (the URL's own, or `postgres` when the URL's does not exist).
 */
export function probePostgres(): Promise<Probe> {
  probed ??= (async (): Promise<Probe> => {
    for (const url of [TEST_SERVER_URL, withDatabase(TEST_SERVER_URL, 'postgres')]) {
      try {
        await runOnce(url, 'SELECT 1');
        return { ok: true, adminUrl: url };
      } catch (error) {
        if ((error as { code?: string }).code === '3D000') continue;
        return { ok: false, reason: `${(error as Error).message || String(error)}` };
      }
    }
    return { ok: false, reason: 'neither the database of INLET_TEST_DATABASE_URL nor "postgres" exists' };
  })();
  return probed;
}

/** For `describe.skipIf`: prints why PostgreSQL tests are skipped. */
export async function postgresOrSkip(what: string): Promise<Probe> {
  const probe = await probePostgres();
  if (!probe.ok) {
    console.warn(
      `Skipping ${what}: no PostgreSQL answers at ${redact(TEST_SERVER_URL)} (${probe.reason}). Set INLET_TEST_DATABASE_URL.`,
    );
  }
  return probe;
}

function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return 'INLET_TEST_DATABASE_URL';
  }
}

export interface TestDatabase {
  readonly name: string;
  /** A URL for the fresh database. */
  readonly url: string;
  /** Runs SQL inside the fresh database (a short-lived connection of its own). */
  query<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** Runs SQL on the server's admin database (to create, rename, lock out or drop databases). */
  admin<R extends QueryResultRow = QueryResultRow>(sql: string, params?: unknown[]): Promise<QueryResult<R>>;
  /** A new empty schema in the database, and a URL whose connections work in it. */
  freshSchema(): Promise<string>;
  /** Ends every other connection to the database; answers how many. */
  terminateConnections(): Promise<number>;
  drop(): Promise<void>;
}

export function randomName(prefix: string): string {
  return `${prefix}_${process.pid}_${randomBytes(5).toString('hex')}`;
}

/** A URL that points at `schema` through the `options` startup parameter. */
export function schemaUrl(url: string, schema: string): string {
  const u = new URL(url);
  u.searchParams.set('options', `-c search_path=${schema}`);
  return u.toString();
}

/** A database name that does not exist on the server (for "not created yet" tests). */
export function urlOfDatabase(adminUrl: string, name: string): string {
  return withDatabase(adminUrl, name);
}

export async function createTestDatabase(adminUrl: string, prefix = 'inlet_test'): Promise<TestDatabase> {
  const name = randomName(prefix);
  const quoted = pg.escapeIdentifier(name);
  await runOnce(adminUrl, `CREATE DATABASE ${quoted}`);
  const url = withDatabase(adminUrl, name);
  return {
    name,
    url,
    query: (sql, params) => runOnce(url, sql, params),
    admin: (sql, params) => runOnce(adminUrl, sql, params),
    async freshSchema() {
      const schema = randomName('s');
      await runOnce(url, `CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
      return schemaUrl(url, schema);
    },
    async terminateConnections() {
      // In the select list, never in WHERE: the planner may run a WHERE function on every backend.
      const result = await runOnce<{ done: boolean }>(
        adminUrl,
        'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      return result.rows.filter((r) => r.done).length;
    },
    async drop() {
      await runOnce(adminUrl, `DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
    },
  };
}
