import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  postgresOrSkip,
  urlOfDatabase,
  type TestDatabase,
} from '../../../test/pg-helpers.js';
import type { ReplicateObject } from '../../replicate/types.js';
import {
  DatabaseNotFoundError,
  InvalidDatabaseUrlError,
  StoreOpenError,
  StoreUnavailableError,
} from '../errors.js';
import { openStore } from '../index.js';
import { MIGRATIONS } from '../migrations.js';
import { makeEvent, runStoreContract } from '../store-contract.test-suite.js';
import type { IncomingEvent, Store } from '../types.js';
import { openPostgresStore, type PostgresStore, type PostgresStoreOptions } from './postgres-store.js';

const probe = await postgresOrSkip('the PostgreSQL store tests');
const adminUrl = probe.ok ? probe.adminUrl : '';

let database: Promise<TestDatabase> | undefined;
function testDatabase(): Promise<TestDatabase> {
  database ??= createTestDatabase(adminUrl, 'inlet_test_store');
  return database;
}

afterAll(async () => {
  if (database !== undefined) await (await database).drop();
});

if (probe.ok) {
  // One database per run; one fresh schema per test keeps them apart at a fraction of the cost.
  runStoreContract('postgres', async () => {
    const url = await (await testDatabase()).freshSchema();
    const store = await openPostgresStore(url, { mode: 'serve', poolSize: 4 });
    return { store, cleanup: () => store.close() };
  });
}

/** Where Debian's PostgreSQL puts its socket (the test is skipped when there is none). */
const SOCKET_DIR = '/var/run/postgresql';

const T0 = Date.UTC(2026, 10, 27, 13, 38, 7, 123);
const started = (id: string): ReplicateObject => ({ id, status: 'starting', model: 'acme/m' });

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe.skipIf(!probe.ok)('PostgresStore specifics', () => {
  let db: TestDatabase;
  let url: string;
  const opened: Store[] = [];

  async function serve(options: Partial<PostgresStoreOptions> = {}, at = url): Promise<PostgresStore> {
    const store = await openPostgresStore(at, { mode: 'serve', poolSize: 4, ...options });
    opened.push(store);
    return store;
  }

  beforeAll(async () => {
    db = await testDatabase();
  });

  afterEach(async () => {
    for (const store of opened.splice(0)) await store.close();
  });

  it('opens by URL through openStore, lazily, as a multi-instance store', async () => {
    url = await db.freshSchema();
    const store = await openStore(url.replace('postgres://', 'postgresql://'), { mode: 'serve' });
    opened.push(store);
    expect(store.dialect).toBe('postgres');
    expect(store.capabilities).toEqual({
      maxConcurrentCommits: 4,
      concurrentCommitBacklog: 16,
      oneCommitPerObject: true,
      multiInstance: true,
      skipLocked: true,
      crossProcessNotify: true,
    });
    expect(store.location).toContain(db.name);
  });

  it.skipIf(!existsSync(join(SOCKET_DIR, '.s.PGSQL.5432')))(
    'connects over a Unix socket named the libpq way (user@/database?host=DIR)',
    async () => {
      url = await db.freshSchema();
      const target = new URL(url);
      const viaSocket = `postgresql://${target.username}@/${db.name}?host=${SOCKET_DIR}${target.search.replace('?', '&')}`;
      const store = await openStore(viaSocket, { mode: 'serve' });
      opened.push(store);
      const [outcome] = await store.commitEvents([makeEvent('msg_socket1', started('socketpred1'))]);
      expect(outcome?.duplicate).toBe(false);
      expect((await store.getPrediction('socketpred1'))?.status).toBe('starting');
      expect(store.location).toContain(`@/${db.name}`);
    },
  );

  it('never shows the password in its location', async () => {
    const withPassword = new URL(await db.freshSchema());
    withPassword.password = 'hunter2';
    // The server trusts local connections, so any password works; it must never be echoed.
    const store = await openPostgresStore(withPassword.toString(), { mode: 'serve', poolSize: 1 }).catch(
      (e: unknown) => e,
    );
    if (store instanceof Error) {
      expect(store.message).not.toContain('hunter2');
    } else {
      opened.push(store as PostgresStore);
      expect((store as PostgresStore).location).not.toContain('hunter2');
      expect((store as PostgresStore).location).toContain('***');
    }
  });

  it('runs the migrations once when five instances start together', async () => {
    url = await db.freshSchema();
    const infos: object[] = [];
    const logger = { info: (o: object) => infos.push(o), warn: () => undefined };
    const stores = await Promise.all(
      [1, 2, 3, 4, 5].map(() => openPostgresStore(url, { mode: 'serve', poolSize: 2, logger })),
    );
    opened.push(...stores);
    expect(infos).toHaveLength(1);
    expect(infos[0]).toMatchObject({ migrations: MIGRATIONS.map((m) => m.id) });
    const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
    const rows = (await db.query(`SELECT id FROM ${schema}.schema_migrations ORDER BY id`)).rows;
    expect(rows.map((r) => Number(r.id))).toEqual(MIGRATIONS.map((m) => m.id));
    for (const store of stores) await expect(store.ping()).resolves.toBeUndefined();
  });

  /** Commits each event on both instances at once: exactly one of each pair is new, the other a duplicate. */
  async function expectOneNewOfEach(a: Store, b: Store, events: readonly IncomingEvent[]): Promise<void> {
    const pairs = await Promise.all(
      events.map((event) => Promise.all([a.commitEvents([event]), b.commitEvents([event])])),
    );
    for (const [i, [[fromA], [fromB]]] of pairs.entries()) {
      expect(
        [fromA, fromB].filter((o) => o?.duplicate === false),
        events[i]!.key,
      ).toHaveLength(1);
      expect((await a.getEvent(events[i]!.key))!.duplicates).toBe(1);
    }
  }

  it('dedupes a delivery committed by two instances at once: exactly one is new', async () => {
    url = await db.freshSchema();
    const [a, b] = [await serve(), await serve()];
    const keys = Array.from({ length: 30 }, (_, i) => `msg_${i}`);
    await expectOneNewOfEach(
      a,
      b,
      keys.map((key, i) => makeEvent(key, started(`p${i}`))),
    );
    for (let i = 0; i < keys.length; i++) {
      expect(await b.getPrediction(`p${i}`)).toMatchObject({ eventCount: 1, status: 'starting' });
    }
  });

  it('dedupes a delivery of an existing prediction committed by two instances at once', async () => {
    url = await db.freshSchema();
    const [a, b] = [await serve(), await serve()];
    const ids = Array.from({ length: 20 }, (_, i) => `q${i}`);
    await a.commitEvents(ids.map((id) => makeEvent(`${id}_s`, started(id))));
    // Both instances lock the prediction's row; the second to get it must find the first's delivery.
    const processing = (id: string) =>
      makeEvent(`${id}_p`, { id, status: 'processing', model: 'acme/m', logs: 'step 1' });
    await expectOneNewOfEach(a, b, ids.map(processing));
    for (let i = 0; i < ids.length; i++) {
      expect(await b.getPrediction(ids[i]!)).toMatchObject({ eventCount: 2, status: 'processing' });
    }
  });

  it('commits overlapping batches in opposite orders without deadlocking', async () => {
    url = await db.freshSchema();
    const [a, b] = [await serve(), await serve()];
    const events = Array.from({ length: 40 }, (_, i) =>
      makeEvent(`k${String(i).padStart(2, '0')}`, started(`obj${i % 7}`)),
    );
    const startedAt = performance.now();
    for (let round = 0; round < 5; round++) {
      const batch = events.slice(round * 8, round * 8 + 8);
      const [ra, rb] = await Promise.all([a.commitEvents(batch), b.commitEvents([...batch].reverse())]);
      const newA = ra.filter((o) => !o.duplicate).length;
      const newB = rb.filter((o) => !o.duplicate).length;
      expect(newA + newB).toBe(8);
    }
    // A deadlock costs deadlock_timeout (1 s by default) before PostgreSQL breaks it.
    expect(performance.now() - startedAt).toBeLessThan(2500);
    const all = await a.listPredictions({ limit: 50 });
    expect(all.items.map((p) => p.eventCount).reduce((x, y) => x + y, 0)).toBe(40);
  });

  it('folds concurrent out-of-order deliveries from two instances to the right state', async () => {
    url = await db.freshSchema();
    const [a, b] = [await serve(), await serve()];
    const events: IncomingEvent[] = [];
    const predictions = 25;
    for (let p = 0; p < predictions; p++) {
      const id = `pred_${p}`;
      const base = { id, model: 'acme/m' };
      events.push(makeEvent(`${id}_s`, { ...base, status: 'starting' }, { webhookTimestampSec: 100 }));
      for (let n = 1; n <= 4; n++) {
        events.push(
          makeEvent(
            `${id}_p${n}`,
            { ...base, status: 'processing', logs: 'x'.repeat(n) },
            { webhookTimestampSec: 100 + n },
          ),
        );
      }
      events.push(
        makeEvent(
          `${id}_done`,
          { ...base, status: 'succeeded', logs: 'xxxx', output: ['o'] },
          { webhookTimestampSec: 110 },
        ),
      );
      if (p % 5 === 0) {
        events.push(makeEvent(`${id}_fail`, { ...base, status: 'failed' }, { webhookTimestampSec: 111 }));
      }
    }
    // A seeded shuffle, then split across the two instances in small concurrent batches.
    let seed = 42;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const shuffled = events
      .map((e) => [random(), e] as const)
      .sort((x, y) => x[0] - y[0])
      .map(([, e]) => e);
    const jobs: Promise<unknown>[] = [];
    for (let i = 0; i < shuffled.length; i += 3) {
      const store = (i / 3) % 2 === 0 ? a : b;
      jobs.push(store.commitEvents(shuffled.slice(i, i + 3)));
    }
    await Promise.all(jobs);

    for (let p = 0; p < predictions; p++) {
      const id = `pred_${p}`;
      const record = await b.getPrediction(id);
      const terminalFirst = shuffled.find(
        (e) => e.object.id === id && ['succeeded', 'failed'].includes(e.object.status),
      );
      expect(record, id).toBeDefined();
      expect(record!.eventCount).toBe(p % 5 === 0 ? 7 : 6);
      expect(['succeeded', 'failed']).toContain(record!.status);
      if (p % 5 !== 0) {
        expect(record).toMatchObject({
          status: 'succeeded',
          winningEventKey: `${id}_done`,
          conflictCount: 0,
        });
      } else {
        // Which terminal came first depends on commit order across instances; the other is a conflict.
        expect(record!.conflictCount).toBe(1);
        expect(terminalFirst).toBeDefined();
      }
    }
  });

  describe('guessed states (one round trip)', () => {
    const processing = (id: string, logs: string): ReplicateObject => ({
      id,
      status: 'processing',
      model: 'acme/m',
      logs,
    });

    it('guesses the objects this instance wrote last, and a new object for one it has not seen', async () => {
      url = await db.freshSchema();
      const a = await serve();
      // A readiness probe goes the locked way and is rolled back: not a commit.
      await a.probeWrite();
      expect(a.commitPaths).toEqual({ guessed: 0, locked: 0, staleGuesses: 0 });
      await a.commitEvents([makeEvent('g1', started('p1')), makeEvent('g2', started('p2'))]);
      await a.commitEvents([makeEvent('g3', processing('p1', 'a')), makeEvent('g4', started('p3'))]);
      await a.commitEvents([makeEvent('g5', processing('p1', 'ab'))]);
      expect(a.commitPaths).toEqual({ guessed: 3, locked: 0, staleGuesses: 0 });
      expect(await a.getPrediction('p1')).toMatchObject({
        status: 'processing',
        eventCount: 3,
        winningEventKey: 'g5',
      });
      const transitions = await a.transitions.listTransitions({ afterSeq: 0, limit: 10 });
      expect(transitions.map((t) => `${t.objectId} ${t.type}`)).toEqual([
        'p1 prediction.started',
        'p2 prediction.started',
        'p1 prediction.logs',
        'p3 prediction.started',
        'p1 prediction.logs',
      ]);
    });

    it('falls back to the locked path when another instance wrote the object, and folds on its state', async () => {
      url = await db.freshSchema();
      const [a, b] = [await serve(), await serve()];
      await a.commitEvents([makeEvent('h1', started('p1'))]);
      // b has not seen p1: its guess (a new object) misses, and the batch is committed again, locked.
      expect(await b.commitEvents([makeEvent('h2', processing('p1', 'a'))])).toEqual([
        { duplicate: false, applied: true, conflict: false },
      ]);
      expect(b.commitPaths).toEqual({ guessed: 0, locked: 1, staleGuesses: 1 });
      // a's guess (1 event) is stale now: the guard refuses it, and the locked path folds on b's write.
      await a.commitEvents([makeEvent('h3', processing('p1', 'abc'))]);
      expect(a.commitPaths).toEqual({ guessed: 1, locked: 1, staleGuesses: 1 });
      expect(await a.getPrediction('p1')).toMatchObject({ eventCount: 3, winningEventKey: 'h3' });
      expect((await a.transitions.listTransitions({ afterSeq: 0, limit: 10 })).map((t) => t.type)).toEqual([
        'prediction.started',
        'prediction.logs',
        'prediction.logs',
      ]);
    });

    it('finds a delivery stored already by a guess that missed: a duplicate, counted once', async () => {
      url = await db.freshSchema();
      const a = await serve();
      await a.commitEvents([makeEvent('d1', started('p1'))]);
      const again = await a.commitEvents([makeEvent('d1', started('p1')), makeEvent('d2', started('p2'))]);
      expect(again).toEqual([
        { duplicate: true, applied: false, conflict: false },
        { duplicate: false, applied: true, conflict: false },
      ]);
      expect(a.commitPaths).toMatchObject({ guessed: 1, locked: 1, staleGuesses: 1 });
      expect((await a.getEvent('d1'))!.duplicates).toBe(1);
      expect(await a.getPrediction('p2')).toMatchObject({ eventCount: 1 });
      expect(await a.transitions.listTransitions({ afterSeq: 0, limit: 10 })).toHaveLength(2);
    });

    it('after a miss, takes the locked path for 1, 2, 4 … batches before guessing again', async () => {
      url = await db.freshSchema();
      const [a, b] = [await serve(), await serve()];
      // Every guess of b misses: a wrote each object first.
      for (let i = 0; i < 8; i++) await a.commitEvents([makeEvent(`s${i}`, started(`p${i}`))]);
      for (let i = 0; i < 8; i++) await b.commitEvents([makeEvent(`x${i}`, processing(`p${i}`, 'a'))]);
      // Batches 1, 3 and 6 guessed and missed; 2, 4–5 and 7–8 waited out the pauses (1, then 2, then 4).
      expect(b.commitPaths).toEqual({ guessed: 0, locked: 8, staleGuesses: 3 });
    });

    it('does not count readiness probes against a pause', async () => {
      url = await db.freshSchema();
      const [a, b] = [await serve(), await serve()];
      for (const i of [0, 1]) await a.commitEvents([makeEvent(`s${i}`, started(`p${i}`))]);
      await b.commitEvents([makeEvent('x0', processing('p0', 'a'))]);
      expect(b.commitPaths).toEqual({ guessed: 0, locked: 1, staleGuesses: 1 });
      // The miss left a pause of one batch: probes meanwhile leave it for the next real batch.
      await b.probeWrite();
      await b.probeWrite();
      await b.commitEvents([makeEvent('x1', processing('p1', 'a'))]);
      expect(b.commitPaths).toEqual({ guessed: 0, locked: 2, staleGuesses: 1 });
    });
  });

  it('keeps events in arrival order inside a batch, whatever their keys', async () => {
    url = await db.freshSchema();
    const store = await serve();
    const keys = ['zeta', 'alpha', 'mike', 'bravo'];
    await store.commitEvents(
      keys.map((k, i) => makeEvent(k, { id: 'p1', status: 'processing', logs: 'x'.repeat(i) })),
    );
    expect((await store.listEvents('p1', { limit: 10 })).items.map((e) => e.key)).toEqual(keys);
  });

  it('rolls back the whole batch when one event fails', async () => {
    url = await db.freshSchema();
    const store = await serve();
    const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
    await db.query(`CREATE FUNCTION ${schema}.boom() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN IF NEW.delivery_key = 'boom' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$`);
    await db.query(
      `CREATE TRIGGER boom BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.boom()`,
    );
    const error = await store
      .commitEvents([makeEvent('ok', started('p1')), makeEvent('boom', started('p2'))])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/boom/);
    expect(await store.getEvent('ok')).toBeUndefined();
    expect(await store.getPrediction('p1')).toBeUndefined();
    expect(await store.commitEvents([makeEvent('ok', started('p1'))])).toEqual([
      { duplicate: false, applied: true, conflict: false },
    ]);
  });

  it('round-trips a 12 MiB body byte-exact', async () => {
    url = await db.freshSchema();
    const store = await serve();
    const output = randomBytes(6 * 1024 * 1024).toString('hex');
    const body = Buffer.from(JSON.stringify({ id: 'big', status: 'succeeded', output }));
    const object = JSON.parse(body.toString('utf8')) as ReplicateObject;
    await store.commitEvents([makeEvent('big', object, { body })]);
    expect((await store.getEvent('big'))!.body.equals(body)).toBe(true);
    expect((await store.getPrediction('big'))!.object.output).toBe(output);
  });

  it('refuses to serve a database migrated by a newer Inlet', async () => {
    url = await db.freshSchema();
    await (await serve()).close();
    const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
    await db.query(
      `INSERT INTO ${schema}.schema_migrations (id, name, applied_at) VALUES (999, 'future', 0)`,
    );
    await expect(openPostgresStore(url, { mode: 'serve' })).rejects.toThrow(/newer Inlet.*999/);
  });

  describe('read mode', () => {
    it('names a missing database and creates nothing', async () => {
      const name = `inlet_missing_${randomBytes(4).toString('hex')}`;
      const error = await openStore(urlOfDatabase(adminUrl, name), { mode: 'read' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseNotFoundError);
      expect((error as Error).message).toContain(name);
      const found = await db.admin('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
      expect(found.rowCount).toBe(0);
    });

    it('refuses a database without Inlet tables, and leaves it alone', async () => {
      url = await db.freshSchema();
      const error = await openStore(url, { mode: 'read' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DatabaseNotFoundError);
      expect((error as Error).message).toMatch(/not an Inlet database/);
      expect((error as Error).message).toContain(db.name);
      const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
      const tables = await db.query(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1',
        [schema],
      );
      expect(tables.rowCount).toBe(0);
    });

    it('sees what serve commits, and cannot write', async () => {
      url = await db.freshSchema();
      const writer = await serve();
      await writer.commitEvents([makeEvent('e1', started('p1'), { receivedAtMs: T0 })]);
      const reader = await openStore(url, { mode: 'read' });
      opened.push(reader);
      expect((await reader.listPredictions({ limit: 10 })).items.map((p) => p.id)).toEqual(['p1']);
      await writer.commitEvents([makeEvent('e2', started('p2'), { receivedAtMs: T0 + 1 })]);
      expect((await reader.listPredictions({ limit: 10 })).items.map((p) => p.id)).toEqual(['p2', 'p1']);
      await expect(reader.commitEvents([makeEvent('e3', started('p3'))])).rejects.toThrow(/read-only/);
    });
  });

  describe('outages', () => {
    it('reports an unreachable server as StoreUnavailableError, fast', async () => {
      const port = await closedPort();
      const startedAt = performance.now();
      const error = await openStore(`postgres://postgres@127.0.0.1:${port}/x`, { mode: 'serve' }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreUnavailableError);
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
      expect(performance.now() - startedAt).toBeLessThan(3000);
    });

    it('reports a database that does not exist as a StoreOpenError to fix, saying so', async () => {
      const name = `inlet_missing_${randomBytes(4).toString('hex')}`;
      const error = await openStore(urlOfDatabase(adminUrl, name), { mode: 'serve' }).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(StoreOpenError);
      expect((error as StoreOpenError).failure).toBe('configuration');
      expect((error as Error).message).toContain(`database "${name}" does not exist — create it`);
    });

    it('rejects a URL that does not parse, without echoing it', async () => {
      for (const bad of ['postgres://user:pw@host:notaport/db', 'postgresql://[::1/db']) {
        const error = await openStore(bad, { mode: 'serve' }).catch((e: unknown) => e);
        expect(error, bad).toBeInstanceOf(InvalidDatabaseUrlError);
        expect((error as Error).message).not.toContain('pw@');
      }
    });

    it('survives pg_terminate_backend: unavailable or retried, then recovers by itself', async () => {
      const own = await createTestDatabase(adminUrl, 'inlet_test_kill');
      try {
        const store = await serve({}, own.url);
        await store.commitEvents([makeEvent('before', started('p0'))]);
        // Idle pooled connections die: the pool must drop them without crashing the process.
        expect(await own.terminateConnections()).toBeGreaterThan(0);
        let attempts = 0;
        for (;;) {
          attempts++;
          try {
            await store.commitEvents([makeEvent('after', started('p1'))]);
            break;
          } catch (error) {
            expect(error).toBeInstanceOf(StoreUnavailableError);
            expect(attempts).toBeLessThan(5);
          }
        }

        // Lock the database out: commits and pings fail fast with StoreUnavailableError.
        await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS false`);
        await own.terminateConnections();
        const startedAt = performance.now();
        await expect(store.commitEvents([makeEvent('during', started('p2'))])).rejects.toBeInstanceOf(
          StoreUnavailableError,
        );
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(store.listPredictions({ limit: 5 })).rejects.toBeInstanceOf(StoreUnavailableError);
        expect(performance.now() - startedAt).toBeLessThan(3000);

        await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS true`);
        await expect(store.ping()).resolves.toBeUndefined();
        expect(await store.commitEvents([makeEvent('during', started('p2'))])).toEqual([
          { duplicate: false, applied: true, conflict: false },
        ]);
        expect((await store.listPredictions({ limit: 10 })).items.map((p) => p.id).sort()).toEqual([
          'p0',
          'p1',
          'p2',
        ]);
      } finally {
        for (const store of opened.splice(0)) await store.close();
        await own.drop();
      }
    });

    it('a connection killed inside a transaction fails that commit only', async () => {
      url = await db.freshSchema();
      const store = await serve({ poolSize: 1 });
      const schema = new URL(url).searchParams.get('options')!.split('=')[1]!;
      // pg_sleep inside the trigger holds the transaction open long enough to kill it.
      await db.query(`CREATE FUNCTION ${schema}.slow() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.delivery_key = 'slow' THEN PERFORM pg_sleep(2); END IF; RETURN NEW; END $$`);
      await db.query(
        `CREATE TRIGGER slow BEFORE INSERT ON ${schema}.events FOR EACH ROW EXECUTE FUNCTION ${schema}.slow()`,
      );
      const pending = store.commitEvents([makeEvent('slow', started('p1'))]).catch((e: unknown) => e);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await db.admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND application_name = 'inlet'",
        [db.name],
      );
      expect(await pending).toBeInstanceOf(StoreUnavailableError);
      expect(await store.getEvent('slow')).toBeUndefined();
      expect(await store.commitEvents([makeEvent('fast', started('p2'))])).toEqual([
        { duplicate: false, applied: true, conflict: false },
      ]);
    });
  });
});
