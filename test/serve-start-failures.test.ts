/**
 * `inlet serve` on a database it can never open exits at once, naming the problem in words: 2 for a
 * setting to fix (a directory as the path, a file that is not a database, a database or role that does
 * not exist, a foreign schema), 1 for the machine (a read-only location). A database that cannot be
 * reached yet (connection refused) keeps today's behaviour: listen, answer 503, retry (CONTRACT §2).
 * Needs `npm run build` first (npm test does it).
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { SECRET, tempDir } from './helpers.js';
import {
  createTestDatabase,
  deliver,
  postgresOrSkip,
  queryOnce,
  randomName,
  signedDelivery,
  startServe,
  urlOfDatabase,
  waitFor,
  type ServeProcess,
} from './pg-helpers.js';
import { BIN, ROOT, runCli } from './process-helpers.js';

const probe = await postgresOrSkip('the PostgreSQL start-up tests');
const adminUrl = probe.ok ? probe.adminUrl : '';
const ENV = { REPLICATE_WEBHOOK_SECRET: SECRET, INLET_LOG_FORMAT: 'json' };
/** "Within a few seconds", with room for a loaded two-core machine. */
const EXIT_WITHIN_MS = 8000;
const tmp = tempDir('inlet-start-');
afterAll(() => tmp.cleanup());

async function serveUntilExit(database: string) {
  const startedAt = performance.now();
  const result = await runCli(['serve', '--port', '0', '--host', '127.0.0.1', '--database', database], ENV, {
    timeoutMs: 20_000,
  });
  return { ...result, ms: performance.now() - startedAt };
}

/** What `inlet:` printed last on stderr: the one line a person reads. */
function lastLine(stderr: string): string {
  return stderr.trim().split('\n').at(-1) ?? '';
}

describe('serve on a SQLite path it can never open', () => {
  it('exits 2 when the path is a directory', async () => {
    const dir = join(tmp.dir, 'a-directory');
    mkdirSync(dir);
    const result = await serveUntilExit(dir);
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toBe(
      `inlet: ${dir} is a directory, not a database file — point --database (DATABASE_URL) at a file, e.g. ${join(dir, 'inlet.db')}`,
    );
    expect(result.ms).toBeLessThan(EXIT_WITHIN_MS);
  });

  it('exits 2 when the file is not a database, and leaves it as it was', async () => {
    const path = join(tmp.dir, 'notes.txt');
    const text = 'These are my notes, not a database.\n'.repeat(20);
    writeFileSync(path, text);
    const result = await serveUntilExit(path);
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toMatch(/notes\.txt is not a SQLite database .* — point --database/);
    expect(result.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('exits 2 when part of the path is a file', async () => {
    const file = join(tmp.dir, 'plain-file');
    writeFileSync(file, '');
    const result = await serveUntilExit(join(file, 'inlet.db'));
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toMatch(/the path cannot hold a database file \(ENOTDIR/);
  });

  it('exits 2 on a foreign schema (an events table with other columns), touching nothing', async () => {
    const path = join(tmp.dir, 'other-app.db');
    const other = new Database(path);
    other.exec('CREATE TABLE events (id INTEGER PRIMARY KEY, name TEXT)');
    other.close();
    const result = await serveUntilExit(path);
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toBe(
      `inlet: ${path} is not an Inlet database: it has a table "events" that Inlet did not create — point --database (DATABASE_URL) at a new database, or at a schema of its own`,
    );
    const after = new Database(path, { readonly: true });
    const tables = after.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all();
    const journal = after.pragma('journal_mode', { simple: true });
    after.close();
    expect(tables).toEqual(['events']);
    expect(journal).toBe('delete');
  });

  it('exits 2 on an Inlet schema changed by hand (a column gone)', async () => {
    const path = join(tmp.dir, 'altered.db');
    await (await openStore(`sqlite:${path}`, { mode: 'serve' })).close();
    const db = new Database(path);
    db.exec('ALTER TABLE events RENAME COLUMN body TO payload');
    db.close();
    const result = await serveUntilExit(path);
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toMatch(
      /is not an Inlet database: its table "events" has other columns \(no body\)/,
    );
  });

  it('exits 1 when the location is read-only', async () => {
    const dir = join(tmp.dir, 'read-only');
    mkdirSync(dir);
    chmodSync(dir, 0o555);
    chmodSync(tmp.dir, 0o755);
    const path = join(dir, 'inlet.db');
    // root writes anywhere: run serve as nobody then (permissions only bind other users).
    const asOther = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    const startedAt = performance.now();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const proc = spawn(
        process.execPath,
        [BIN, 'serve', '--port', '0', '--host', '127.0.0.1', '--database', path],
        {
          cwd: ROOT,
          env: { PATH: process.env.PATH, ...ENV },
          stdio: ['ignore', 'ignore', 'pipe'],
          ...asOther,
        },
      );
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      proc.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stderr });
      });
    });
    expect(result.code).toBe(1);
    expect(lastLine(result.stderr)).toBe(
      `inlet: ${path} cannot be written (SQLITE_CANTOPEN: a read-only location, or this user lacks permission) — make ${dir} and the file writable by this user, or choose another path with --database (DATABASE_URL)`,
    );
    expect(performance.now() - startedAt).toBeLessThan(EXIT_WITHIN_MS);
  });
});

/** A port nothing listens on (bound once by us, then closed). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe.skipIf(!probe.ok)('serve on a PostgreSQL database it can never open', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('exits 2 when the database does not exist, and creates nothing', async () => {
    const name = randomName('inlet_nosuchdb');
    const url = urlOfDatabase(adminUrl, name);
    const result = await serveUntilExit(url);
    expect(result.code).toBe(2);
    const shown = url.replace(/\/\/([^:@/]+):[^@]*@/, '//$1:***@');
    expect(lastLine(result.stderr)).toBe(
      `inlet: ${shown}: database "${name}" does not exist — create it (createdb, or CREATE DATABASE) or fix --database (DATABASE_URL)`,
    );
    expect(result.ms).toBeLessThan(EXIT_WITHIN_MS);
    expect((await queryOnce(adminUrl, 'SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount).toBe(
      0,
    );
  });

  it('exits 2 when the role does not exist', async () => {
    const role = randomName('inlet_nosuchrole');
    const url = new URL(adminUrl);
    url.username = role;
    url.password = '';
    const result = await serveUntilExit(url.toString());
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toMatch(
      new RegExp(`role "${role}" does not exist — fix the user or password in --database \\(DATABASE_URL\\)`),
    );
    expect(result.ms).toBeLessThan(EXIT_WITHIN_MS);
  });

  it('exits 2 on a foreign schema in words, never the driver\'s "column does not exist"', async () => {
    const db = await createTestDatabase(adminUrl, 'inlet_test_foreign');
    cleanups.push(() => db.drop());
    const url = await db.freshSchema();
    const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
    await db.query(`CREATE TABLE ${schema}.events (id INTEGER PRIMARY KEY, name TEXT)`);
    await db.query(
      `CREATE TABLE ${schema}.schema_migrations (id INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`,
    );
    await db.query(`INSERT INTO ${schema}.schema_migrations VALUES (1, 'events_objects_rejections', 0)`);
    const result = await serveUntilExit(url);
    expect(result.code).toBe(2);
    expect(lastLine(result.stderr)).toMatch(
      /is not an Inlet database: its table "events" has other columns \(no seq, delivery_key, object_id, status, …\) — point --database/,
    );
    expect(result.stderr).not.toMatch(/column "\w+" does not exist/);
    const columns = await db.query(
      'SELECT column_name FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2',
      [schema, 'events'],
    );
    expect(columns.rows.map((r) => r.column_name as string).sort()).toEqual(['id', 'name']);
  });

  it('a server that refuses connections is not a reason to stop: listens, answers 503, retries, connects once it answers', async () => {
    const db = await createTestDatabase(adminUrl, 'inlet_test_refused');
    cleanups.push(() => db.drop());
    const port = await freePort();
    const target = new URL(db.url);
    const viaProxy = new URL(db.url);
    viaProxy.port = String(port);
    const server: ServeProcess = await startServe(viaProxy.toString(), ['--commit-timeout-ms', '500']);
    cleanups.push(() => server.stop());

    const early = signedDelivery({ id: 'refused_1', status: 'starting' });
    expect(await deliver(server.webhookUrl, early)).toMatchObject({
      status: 503,
      json: { error: { code: 'storage_unavailable' } },
    });
    expect((await fetch(`${server.base}/readyz`)).status).toBe(503);
    expect((await fetch(`${server.base}/healthz`)).status).toBe(200);
    await waitFor('a logged retry', async () =>
      /store unreachable; answering 503 and retrying/.test(server.output()),
    );
    expect(server.output()).toMatch(/ECONNREFUSED/);

    // PostgreSQL "comes up" on that port: a proxy to the real server starts listening there.
    const sockets = new Set<Socket>();
    const proxy: Server = createServer((client) => {
      const upstream = createConnection(Number(target.port || 5432), target.hostname);
      for (const socket of [client, upstream]) {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      }
      client.pipe(upstream).pipe(client);
      client.on('error', () => upstream.destroy());
      upstream.on('error', () => client.destroy());
    });
    await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          proxy.close(() => resolve());
          for (const socket of sockets) socket.destroy();
        }),
    );
    await waitFor(
      '/readyz 200 once the server answers',
      async () => (await fetch(`${server.base}/readyz`)).status === 200,
      20_000,
    );
    expect((await deliver(server.webhookUrl, early)).status).toBe(200);
    expect(server.child.exitCode).toBeNull();
  });
});
