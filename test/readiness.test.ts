/**
 * `/readyz` follows the outcome of real writes, and of a probe write when none was recent (CONTRACT §5):
 * while writes fail, for whatever reason, deliveries get 503 and so does `/readyz`, for as long as they
 * fail; once writes work again it answers 200 without waiting for traffic. The clock is injected, so
 * "a minute later" is a step, not a wait.
 */
import { fdatasync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createInlet, type Inlet } from '../src/inlet.js';
import { openStore } from '../src/store/index.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import { prediction, postWebhook, quietLogger, signedHeaders, tempDir, testConfig } from './helpers.js';
import {
  createTestDatabase,
  postgresOrSkip,
  queryOnce,
  randomName,
  type TestDatabase,
} from './pg-helpers.js';

const probe = await postgresOrSkip('the PostgreSQL readiness tests');

interface Harness {
  inlet: Inlet;
  /** Moves the readiness clock forward. */
  advance(ms: number): void;
  deliver(): Promise<number>;
  ready(): Promise<number>;
  /** Deliveries answered 200. */
  stored: number;
}

function harness(store: Store): Harness {
  let nowMs = 1_000_000;
  const inlet = createInlet(testConfig({ INLET_COMMIT_TIMEOUT_MS: '500' }), store, quietLogger, {
    readiness: { now: () => nowMs },
  });
  const h: Harness = {
    inlet,
    stored: 0,
    advance: (ms) => (nowMs += ms),
    async deliver() {
      const body = JSON.stringify(prediction());
      const { status } = await postWebhook(inlet, body, signedHeaders(body));
      if (status === 200) h.stored++;
      return status;
    },
    async ready() {
      return (await inlet.app.inject({ url: '/readyz' })).statusCode;
    },
  };
  return h;
}

/** Breaks writes, checks both answers stay 503 however long it lasts, mends them, checks 200 comes back. */
async function breakAndMend(h: Harness, breakWrites: () => Promise<void>, mendWrites: () => Promise<void>) {
  expect(await h.ready()).toBe(200);
  expect(await h.deliver()).toBe(200);

  await breakWrites();
  expect(await h.deliver()).toBe(503);
  expect(await h.ready()).toBe(503);
  // Minutes pass without a delivery: each /readyz then rests on a probe write, which fails too.
  for (let minute = 0; minute < 3; minute++) {
    h.advance(60_000);
    expect(await h.ready()).toBe(503);
  }

  await mendWrites();
  // No delivery needed: the next probe finds writes working (a few tries where connections were cut).
  let status = 0;
  for (let attempt = 0; attempt < 10 && status !== 200; attempt++) {
    h.advance(60_000);
    status = await h.ready();
  }
  expect(status).toBe(200);
  expect(await h.deliver()).toBe(200);
}

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('/readyz on SQLite', () => {
  function sqliteFile(): string {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    return join(tmp.dir, 'inlet.db');
  }

  it('a trigger refusing inserts (an error not classed "unavailable"): 503 for as long as it refuses', async () => {
    const path = sqliteFile();
    const h = harness(await openStore(`sqlite:${path}`, { mode: 'serve' }));
    cleanups.push(() => h.inlet.close());
    const other = new Database(path);
    cleanups.push(() => other.close());
    await breakAndMend(
      h,
      async () => {
        other.exec("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END");
      },
      async () => {
        other.exec('DROP TRIGGER refuse');
      },
    );
    // The probes left no row behind: only the deliveries answered 200 are stored.
    expect(other.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: h.stored });
  });

  it('a disk that fails the WAL sync: 503 for as long as it fails', async () => {
    const path = sqliteFile();
    let failing = false;
    const store = await openSqliteStore(path, {
      mode: 'serve',
      walSync: (fd, done) => {
        if (!failing) return fdatasync(fd, done);
        done(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
      },
    });
    const h = harness(store);
    cleanups.push(() => h.inlet.close());
    await breakAndMend(
      h,
      async () => {
        failing = true;
      },
      async () => {
        failing = false;
      },
    );
  });
});

describe.skipIf(!probe.ok)('/readyz on PostgreSQL', () => {
  const adminUrl = probe.ok ? probe.adminUrl : '';

  /** A fresh database, migrated by the admin, and a URL for a role with only the rights Inlet needs. */
  async function databaseWithRole(): Promise<{ db: TestDatabase; role: string; url: string }> {
    const db = await createTestDatabase(adminUrl, 'inlet_test_ready');
    cleanups.push(() => db.drop());
    await (await openStore(db.url, { mode: 'serve' })).close();
    const role = randomName('inlet_ready');
    const quoted = pg.escapeIdentifier(role);
    await db.admin(`CREATE ROLE ${quoted} LOGIN`);
    // Dropped after the database (cleanups run in reverse), which holds its grants.
    cleanups.splice(cleanups.length - 1, 0, () => queryOnce(adminUrl, `DROP ROLE IF EXISTS ${quoted}`));
    await db.query(`GRANT USAGE, CREATE ON SCHEMA public TO ${quoted}`);
    await db.query(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${quoted}`);
    await db.query(`GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${quoted}`);
    const url = new URL(db.url);
    url.username = role;
    return { db, role: quoted, url: url.toString() };
  }

  it('REVOKE INSERT ON events (permission denied, not "unavailable"): 503 until it is granted again', async () => {
    const { db, role, url } = await databaseWithRole();
    const h = harness(await openStore(url, { mode: 'serve' }));
    cleanups.push(() => h.inlet.close());
    await breakAndMend(
      h,
      async () => {
        await db.query(`REVOKE INSERT ON events FROM ${role}`);
      },
      async () => {
        await db.query(`GRANT INSERT ON events TO ${role}`);
      },
    );
    const stored = await db.query<{ n: string }>('SELECT count(*) AS n FROM events');
    expect(Number(stored.rows[0]!.n)).toBe(h.stored);
    const objects = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM objects WHERE id LIKE 'inlet_%'",
    );
    expect(Number(objects.rows[0]!.n)).toBe(0);
  });

  it('a read-only database (default_transaction_read_only): 503 until it takes writes again', async () => {
    const { db, role, url } = await databaseWithRole();
    const h = harness(await openStore(url, { mode: 'serve' }));
    cleanups.push(() => h.inlet.close());
    await breakAndMend(
      h,
      async () => {
        await db.admin(`ALTER ROLE ${role} SET default_transaction_read_only = on`);
        await db.terminateConnections();
      },
      async () => {
        await db.admin(`ALTER ROLE ${role} RESET default_transaction_read_only`);
        await db.terminateConnections();
      },
    );
  });
});
