/**
 * Fresh PostgreSQL databases for tests. The server is `INLET_TEST_DATABASE_URL` (never `DATABASE_URL`,
 * which configures `serve`); each test file makes its own database and drops it when done, so runs
 * never collide and leave nothing behind.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import pg from 'pg';
import type { QueryResult, QueryResultRow } from 'pg';
import { signWebhook } from '../src/verify/index.js';
import { SECRET } from './helpers.js';
import { runCli, startServe as startServeProcess, stop as stopServeProcess } from './process-helpers.js';

export const TEST_SERVER_URL =
  process.env.INLET_TEST_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

export type Probe = { ok: true; adminUrl: string } | { ok: false; reason: string };

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

/** Runs one statement on its own short-lived connection. */
export async function queryOnce<R extends QueryResultRow = QueryResultRow>(
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
        await queryOnce(url, 'SELECT 1');
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
  await queryOnce(adminUrl, `CREATE DATABASE ${quoted}`);
  const url = withDatabase(adminUrl, name);
  return {
    name,
    url,
    query: (sql, params) => queryOnce(url, sql, params),
    admin: (sql, params) => queryOnce(adminUrl, sql, params),
    async freshSchema() {
      const schema = randomName('s');
      await queryOnce(url, `CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
      return schemaUrl(url, schema);
    },
    async terminateConnections() {
      // In the select list, never in WHERE: the planner may run a WHERE function on every backend.
      const result = await queryOnce<{ done: boolean }>(
        adminUrl,
        'SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [name],
      );
      return result.rows.filter((r) => r.done).length;
    },
    drop: () => dropDatabase(adminUrl, name),
  };
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await queryOnce(adminUrl, `DROP DATABASE IF EXISTS ${pg.escapeIdentifier(name)} WITH (FORCE)`);
}

// ---- `inlet serve` processes (built: run `npm run build` first) ----

export const SERVE_SECRET = SECRET;

export interface ServeProcess {
  readonly child: ChildProcess;
  /** The webhook URL it printed. */
  readonly webhookUrl: string;
  /** `http://host:port` */
  readonly base: string;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after a grace period; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** `inlet serve --port 0` on a database (the process helpers do the spawning). */
export async function startServe(
  databaseUrl: string,
  args: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<ServeProcess> {
  const server = await startServeProcess(['--database', databaseUrl, ...args], {
    REPLICATE_WEBHOOK_SECRET: SECRET,
    ...env,
  });
  const stop = async () => {
    const timer = setTimeout(() => server.proc.kill('SIGKILL'), 5000);
    try {
      const code = await stopServeProcess(server);
      return typeof code === 'number' ? code : null;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    child: server.proc,
    webhookUrl: `${server.base}/replicate-webhook`,
    base: server.base,
    output: () => server.output(),
    stop,
  };
}

/** Runs the CLI to completion (bounded). */
export async function runInlet(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return runCli([...args], env, { timeoutMs: 30_000 });
}

export interface Delivery {
  key: string;
  body: string;
  headers: Record<string, string>;
}

/** A prediction body signed the way Replicate signs it. */
export function signedDelivery(
  object: Record<string, unknown>,
  timestampSec = Math.floor(Date.now() / 1000),
): Delivery {
  const body = JSON.stringify(object);
  const key = `msg_${randomBytes(12).toString('hex')}`;
  return {
    key,
    body,
    headers: {
      'content-type': 'application/json',
      ...signWebhook(body, { secret: SERVE_SECRET, id: key, timestampSec }),
    },
  };
}

export interface Answer {
  status: number;
  json: Record<string, unknown>;
  ms: number;
}

export async function deliver(url: string, delivery: Delivery, timeoutMs = 10_000): Promise<Answer> {
  const startedAt = performance.now();
  const res = await fetch(url, {
    method: 'POST',
    headers: delivery.headers,
    body: delivery.body,
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    json = { text };
  }
  return { status: res.status, json, ms: performance.now() - startedAt };
}

export async function getJson(url: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** Polls `check` until it answers true, or fails after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Where a test's `inlet serve` keeps its data: a SQLite file, or a fresh PostgreSQL database. */
export interface ServeDialect {
  name: string;
  database(tag: string): Promise<{ url: string; drop(): Promise<void> }>;
}

/** Every dialect `serve` takes (PostgreSQL only when `probe` found a server), SQLite files under `dir`. */
export function serveDialects(probe: Probe, dir: string): ServeDialect[] {
  return [
    {
      name: 'sqlite',
      database: async (tag) => ({ url: join(dir, `${tag}.db`), drop: async () => undefined }),
    },
    ...(probe.ok
      ? [
          {
            name: 'postgres',
            database: async (tag: string) => {
              const db = await createTestDatabase(probe.adminUrl, `inlet_test_${tag}`);
              return { url: db.url, drop: () => db.drop() };
            },
          },
        ]
      : []),
  ];
}
