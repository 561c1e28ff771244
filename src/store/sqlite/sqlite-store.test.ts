import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReplicateObject } from '../../replicate/types.js';
import { DatabaseNotFoundError, StoreOpenError, StoreUnavailableError } from '../errors.js';
import { openStore } from '../index.js';
import { MIGRATIONS } from '../migrations.js';
import { makeEvent, runStoreContract } from '../store-contract.test-suite.js';
import { DEFAULT_SERVE_BUSY_TIMEOUT_MS, openSqliteStore, type SqliteStore } from './sqlite-store.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'inlet-sqlite-'));
}

runStoreContract('sqlite', async () => {
  const dir = await tempDir();
  const store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('SqliteStore specifics', () => {
  let dir: string;
  let path: string;
  const opened: { close(): unknown }[] = [];

  function track<T extends { close(): unknown }>(thing: T): T {
    opened.push(thing);
    return thing;
  }

  async function serve(file = path, busyTimeoutMs?: number): Promise<SqliteStore> {
    return track(await openSqliteStore(file, { mode: 'serve', busyTimeoutMs }));
  }

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'nested', 'deeper', 'inlet.db');
  });

  afterEach(async () => {
    for (const thing of opened.splice(0)) await thing.close();
    await rm(dir, { recursive: true, force: true });
  });

  const started = (id: string): ReplicateObject => ({ id, status: 'starting', model: 'acme/m' });

  it('creates parent directories and the file in serve mode, by URL', async () => {
    const store = track(await openStore(`sqlite:${path}`, { mode: 'serve' }));
    expect(store.dialect).toBe('sqlite');
    expect(store.location).toBe(path);
    expect(existsSync(path)).toBe(true);
  });

  it('resolves relative paths to an absolute location', async () => {
    const store = track(await openStore(relative(process.cwd(), path), { mode: 'serve' }));
    expect(store.location).toBe(path);
  });

  it('keeps data across close and reopen, without re-running migrations', async () => {
    const logs: object[] = [];
    const logger = { info: (o: object) => logs.push(o), warn: (o: object) => logs.push(o) };
    const first = await openSqliteStore(path, { mode: 'serve', logger });
    expect(logs).toEqual([{ location: path, migrations: MIGRATIONS.map((m) => m.id) }]);
    await first.commitEvents([makeEvent('e1', started('p1'))]);
    await first.close();

    const second = track(await openSqliteStore(path, { mode: 'serve', logger }));
    expect(logs).toHaveLength(1);
    expect(await second.getPrediction('p1')).toMatchObject({ status: 'starting', eventCount: 1 });
    expect(await second.commitEvents([makeEvent('e1', started('p1'))])).toEqual([
      { duplicate: true, applied: false, conflict: false },
    ]);
  });

  it('refreshes planner statistics on close (PRAGMA optimize), unless told not to (a CLI verb beside serve)', async () => {
    const statistics = async (optimizeOnClose: boolean | undefined) => {
      const file = join(dir, `optimize-${String(optimizeOnClose)}.db`);
      const store = await openSqliteStore(file, {
        mode: 'serve',
        ...(optimizeOnClose === undefined ? {} : { optimizeOnClose }),
      });
      await store.commitEvents(Array.from({ length: 20 }, (_, i) => makeEvent(`e${i}`, started(`p${i}`))));
      await store.close();
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 'sqlite_stat1'").get();
      } finally {
        db.close();
      }
    };
    // The statistics table exists once optimize has analysed something: it writes, so it takes the writer.
    expect(await statistics(undefined)).toEqual({ n: 1 });
    expect(await statistics(false)).toEqual({ n: 0 });
  });

  it('sets WAL, synchronous NORMAL (commits are synced by WalSync), Inlet-run checkpoints and a short busy timeout', async () => {
    const store = await serve();
    expect(store.pragmas()).toEqual({
      journalMode: 'wal',
      synchronous: 1,
      busyTimeoutMs: DEFAULT_SERVE_BUSY_TIMEOUT_MS,
      walAutocheckpoint: 0,
    });
    expect(DEFAULT_SERVE_BUSY_TIMEOUT_MS).toBeLessThanOrEqual(50);
  });

  it('read mode on a missing path throws DatabaseNotFoundError naming it, and creates nothing', async () => {
    const error = await openStore(`sqlite:${path}`, { mode: 'read' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DatabaseNotFoundError);
    expect((error as Error).message).toContain(path);
    expect(existsSync(join(dir, 'nested'))).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('read mode refuses a file that is not an Inlet database, and leaves it alone', async () => {
    const plain = join(dir, 'plain.db');
    const other = new Database(plain);
    other.exec('CREATE TABLE notes (x TEXT)');
    other.close();
    await expect(openStore(plain, { mode: 'read' })).rejects.toThrow(/not an Inlet database/);
    const check = new Database(plain, { readonly: true });
    expect(check.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all()).toEqual([
      { name: 'notes' },
    ]);
    check.close();

    const text = join(dir, 'text.db');
    await writeFile(text, 'this is not a database at all, just some text that is long enough '.repeat(20));
    await expect(openStore(text, { mode: 'read' })).rejects.toBeInstanceOf(DatabaseNotFoundError);
    await expect(openStore(dir, { mode: 'read' })).rejects.toBeInstanceOf(DatabaseNotFoundError);
    await expect(openStore(join(text, 'below.db'), { mode: 'read' })).rejects.toThrow(/ENOTDIR/);
  });

  it('read mode sees what serve commits, and cannot write', async () => {
    const writer = await serve();
    await writer.commitEvents([makeEvent('e1', started('p1'))]);
    const reader = track(await openStore(path, { mode: 'read' }));
    expect((await reader.listPredictions({ limit: 10 })).items.map((p) => p.id)).toEqual(['p1']);
    await writer.commitEvents([makeEvent('e2', started('p2'))]);
    expect((await reader.listPredictions({ limit: 10 })).items.map((p) => p.id)).toEqual(['p2', 'p1']);
    await expect(reader.commitEvents([makeEvent('e3', started('p3'))])).rejects.toThrow(/read-only/);
  });

  it('read mode works on a database no server holds open', async () => {
    const writer = await openSqliteStore(path, { mode: 'serve' });
    await writer.commitEvents([makeEvent('e1', started('p1'))]);
    await writer.close();
    const reader = track(await openStore(path, { mode: 'read' }));
    expect(await reader.getPrediction('p1')).toMatchObject({ status: 'starting' });
  });

  it('fails fast with StoreUnavailableError while another connection holds the write lock', async () => {
    const store = await serve();
    const other = track(new Database(path));
    other.exec('BEGIN EXCLUSIVE');
    other
      .prepare(
        "INSERT INTO rejections (id, received_at, code, message, remote_address, headers, body, body_len) VALUES ('x', 1, 'c', 'm', 'r', '{}', x'', 0)",
      )
      .run();

    const startedAt = performance.now();
    const error = await store.commitEvents([makeEvent('e1', started('p1'))]).catch((e: unknown) => e);
    expect(performance.now() - startedAt).toBeLessThan(500);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as Error).message).toMatch(/SQLITE_BUSY/);
    await expect(
      store.recordRejections(
        [
          {
            receivedAtMs: 1,
            code: 'c',
            message: 'm',
            remoteAddress: 'r',
            headers: {},
            body: Buffer.alloc(0),
          },
        ],
        {
          maxRows: 10,
          maxBodyBytes: 10,
        },
      ),
    ).rejects.toBeInstanceOf(StoreUnavailableError);
    // Reads still answer from the last committed state.
    expect(await store.listRejections({ limit: 5 })).toEqual({ items: [], hasMore: false });

    other.exec('ROLLBACK');
    expect(await store.commitEvents([makeEvent('e1', started('p1'))])).toEqual([
      { duplicate: false, applied: true, conflict: false },
    ]);
    expect(await store.getPrediction('p1')).toMatchObject({ eventCount: 1 });
  });

  it('answers a delivery whose first commit was never acknowledged (WAL sync failed) as new, not a duplicate', async () => {
    let failSyncs = true;
    const store = track(
      await openSqliteStore(path, {
        mode: 'serve',
        walSync: (_fd, done) => done(failSyncs ? Object.assign(new Error('EIO'), { code: 'EIO' }) : null),
      }),
    );
    const first = [makeEvent('msg_1', started('p1')), makeEvent('msg_2', started('p2'))];
    await expect(store.commitEvents(first)).rejects.toThrow(StoreUnavailableError);
    // Still failing: the retry is not acknowledged either, and stays "new" for the next one.
    await expect(store.commitEvents([first[0]!])).rejects.toThrow(StoreUnavailableError);
    failSyncs = false;
    expect(await store.commitEvents([first[0]!, makeEvent('msg_3', started('p3'))])).toEqual([
      { duplicate: false, applied: true, conflict: false },
      { duplicate: false, applied: true, conflict: false },
    ]);
    expect(await store.commitEvents([first[1]!])).toEqual([
      { duplicate: false, applied: true, conflict: false },
    ]);
    // Once answered 200, the next delivery of the same key is a duplicate, counted once.
    expect(await store.commitEvents([first[0]!])).toEqual([
      { duplicate: true, applied: false, conflict: false },
    ]);
    const events = await store.listEvents('p1', { limit: 10 });
    expect(events.items.map((e) => e.duplicates)).toEqual([1]);
    expect((await store.listEvents('p2', { limit: 10 })).items.map((e) => e.duplicates)).toEqual([0]);
  });

  it('rolls back the whole batch when one event fails', async () => {
    const store = await serve();
    const other = new Database(path);
    other.exec(
      "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.delivery_key = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
    );
    other.close();
    await expect(
      store.commitEvents([makeEvent('ok', started('p1')), makeEvent('boom', started('p2'))]),
    ).rejects.toThrow(/boom/);
    expect(await store.getEvent('ok')).toBeUndefined();
    expect(await store.getPrediction('p1')).toBeUndefined();
    expect(await store.commitEvents([makeEvent('ok', started('p1'))])).toEqual([
      { duplicate: false, applied: true, conflict: false },
    ]);
  });

  it('round-trips a 12 MiB body byte-exact', async () => {
    const store = await serve();
    const output = randomBytes(6 * 1024 * 1024).toString('hex');
    const body = Buffer.from(JSON.stringify({ id: 'big', status: 'succeeded', output }));
    expect(body.length).toBeGreaterThan(12 * 1024 * 1024);
    const object = JSON.parse(body.toString('utf8')) as ReplicateObject;
    await store.commitEvents([makeEvent('big', object, { body })]);
    expect((await store.getEvent('big'))!.body.equals(body)).toBe(true);
    expect((await store.getPrediction('big'))!.object.output).toBe(output);
    expect((await store.listPredictions({ limit: 1 })).items[0]!.summary).toEqual({
      id: 'big',
      status: 'succeeded',
    });
  });

  it('refuses to serve a database migrated by a newer Inlet', async () => {
    await (await serve()).close();
    const other = new Database(path);
    other.prepare('INSERT INTO schema_migrations (id, name, applied_at) VALUES (999, ?, 0)').run('future');
    other.close();
    await expect(openSqliteStore(path, { mode: 'serve' })).rejects.toThrow(/newer Inlet.*999/);
  });

  it('reports a location that can never hold the file as a StoreOpenError to fix, not a passing fault', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    for (const path of [join(file, 'inlet.db'), dir]) {
      const error = await openSqliteStore(path, { mode: 'serve' }).catch((e: unknown) => e);
      expect(error, path).toBeInstanceOf(StoreOpenError);
      expect((error as StoreOpenError).failure, path).toBe('configuration');
    }
  });

  it('probes writes through the events table and the WAL sync, leaving no row', async () => {
    const path = join(dir, 'probe.db');
    const store = track(await openSqliteStore(path, { mode: 'serve' }));
    await store.commitEvents([makeEvent('e1', started('p1'))]);
    await store.probeWrite();
    await store.probeWrite();
    const other = new Database(path);
    try {
      expect(other.prepare('SELECT delivery_key FROM events').pluck().all()).toEqual(['e1']);
      other.exec("CREATE TRIGGER refuse BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'refused'); END");
      await expect(store.probeWrite()).rejects.toThrow(/refused/);
      other.exec('DROP TRIGGER refuse');
      await store.probeWrite();
    } finally {
      other.close();
    }
  });

  it('serves an in-memory database', async () => {
    const store = track(await openStore('sqlite::memory:', { mode: 'serve' }));
    await store.commitEvents([makeEvent('e1', started('p1'))]);
    expect(await store.getPrediction('p1')).toMatchObject({ status: 'starting' });
    await expect(openStore('sqlite::memory:', { mode: 'read' })).rejects.toBeInstanceOf(
      DatabaseNotFoundError,
    );
  });
});
