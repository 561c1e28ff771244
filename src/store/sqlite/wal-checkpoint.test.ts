import { existsSync, linkSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../errors.js';
import type { IncomingEvent } from '../types.js';
import { openSqliteStore } from './sqlite-store.js';
import { keptWalPath, restoreKeptWal, WalCheckpointer } from './wal-checkpoint.js';
import { controlledSync } from './controlled-sync.test-suite.js';
import { WalSync } from './wal-sync.js';

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 2));
  expect(check()).toBe(true);
}

function event(n: number): IncomingEvent {
  const body = JSON.stringify({ id: `p${n}`, status: 'succeeded', logs: 'x'.repeat(1500) });
  return {
    key: `msg_${n}`,
    scheme: 'standard',
    receivedAtMs: 1_700_000_000_000 + n,
    webhookTimestampSec: 1_700_000_000,
    headers: {},
    body: Buffer.from(body),
    object: JSON.parse(body) as IncomingEvent['object'],
  };
}

describe('WalCheckpointer', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-checkpoint-'));
    path = join(dir, 'inlet.db');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps the WAL bounded under steady concurrent commits, and loses nothing', async () => {
    const store = await openSqliteStore(path, { mode: 'serve', checkpointFrames: 50 });
    let largestWal = 0;
    const total = 4800;
    // Eight batches in flight at any time, as the commit batcher runs them: never a quiet moment.
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const batch = Array.from({ length: 12 }, () => event(next++));
        await store.commitEvents(batch);
        largestWal = Math.max(largestWal, statSync(`${path}-wal`).size);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    // Inlet's checkpoints did it, not SQLite's automatic ones.
    expect(store.pragmas().walAutocheckpoint).toBe(0);
    await store.close();
    // Each delivery writes about a page (≈ 20 MB in all); without restarts the WAL would hold them all.
    // It restarts after each checkpoint, which lets writes go on while it copies most of the WAL: at
    // this rate, far above any real one, each adds a few hundred frames to the 50 it starts at.
    expect(largestWal).toBeLessThan(5 * 1024 * 1024);
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) AS n FROM events').get()).toEqual({ n: total });
    db.close();
  });

  describe('one checkpoint, step by step', () => {
    let db: Database.Database;
    let wal: WalSync;
    let insert: Database.Statement;
    beforeEach(async () => {
      await (await openSqliteStore(path, { mode: 'serve' })).close();
      db = new Database(path);
      db.pragma('synchronous = NORMAL');
      db.exec('CREATE TABLE t (x BLOB)');
      insert = db.prepare('INSERT INTO t VALUES (randomblob(3000))');
      wal = new WalSync(path);
    });
    afterEach(() => {
      wal.close();
      db.close();
    });

    /** Writes until the checkpointer starts a checkpoint. */
    function writeUntilCheckpoint(checkpoints: WalCheckpointer): void {
      for (let i = 0; i < 100 && !checkpoints.checkpointing; i++) {
        insert.run();
        checkpoints.committed();
      }
      expect(checkpoints.checkpointing).toBe(true);
    }

    it('copies most of the WAL while writes go on, then holds them for the rest; the WAL restarts', async () => {
      const { sync, calls } = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, wal, { frames: 20, syncDatabase: sync });
      writeUntilCheckpoint(checkpoints);
      const framesBefore = checkpoints.walFrames();
      expect(framesBefore).toBeGreaterThanOrEqual(20);
      // First pass: the WAL is synced, copied, and the database file's sync starts; writes go on.
      await until(() => calls.length === 1);
      expect(checkpoints.writeHold()).toBeUndefined();
      insert.run();
      checkpoints.committed();
      // Appended: the WAL cannot restart before the database file is synced.
      expect(checkpoints.walFrames()).toBeGreaterThan(framesBefore);
      calls[0]!(null);
      // Second pass: writes wait until what was committed meanwhile is copied and synced too.
      await until(() => calls.length === 2);
      expect(checkpoints.writeHold()).toBeInstanceOf(Promise);
      calls[1]!(null);
      await checkpoints.idle();
      expect(checkpoints.writeHold()).toBeUndefined();
      insert.run();
      expect(checkpoints.walFrames()).toBeLessThan(framesBefore);
      checkpoints.close();
    });

    it('copies in its first pass only frames that are durable in the WAL', async () => {
      const walSync = controlledSync();
      const slowWal = new WalSync(path, walSync.sync);
      const dbSync = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, slowWal, { frames: 20, syncDatabase: dbSync.sync });
      writeUntilCheckpoint(checkpoints);
      await until(() => walSync.calls.length === 1);
      // Committed after the sync the checkpoint waits for started: not covered by it.
      insert.run();
      checkpoints.committed();
      const frames = checkpoints.walFrames();
      walSync.calls[0]!(null);
      await until(() => dbSync.calls.length === 1);
      const copied = (db.pragma('wal_checkpoint(PASSIVE)') as { checkpointed: number }[])[0]!;
      // The pin kept the copy, and this checkpoint of the rest, to the frames the sync covered.
      expect(copied.checkpointed).toBeLessThan(frames);
      dbSync.calls[0]!(null);
      await until(() => walSync.calls.length >= 2);
      for (const done of walSync.calls.splice(0)) done(null);
      await until(() => dbSync.calls.length === 2);
      dbSync.calls[1]!(null);
      await checkpoints.idle();
      checkpoints.close();
      slowWal.close();
    });

    it('keeps another connection from restarting the WAL before the database file is synced', async () => {
      const { sync, calls } = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, wal, { frames: 20, syncDatabase: sync });
      writeUntilCheckpoint(checkpoints);
      const other = new Database(path);
      // In either pass, another process writing meanwhile must append to the WAL, not overwrite its start.
      for (const pass of [1, 2]) {
        await until(() => calls.length === pass);
        const framesCopied = checkpoints.walFrames();
        other.prepare('INSERT INTO t VALUES (randomblob(3000))').run();
        expect(checkpoints.walFrames()).toBeGreaterThan(framesCopied);
        calls[pass - 1]!(null);
      }
      other.close();
      await checkpoints.idle();
      checkpoints.close();
    });

    it('stops writes when the database file cannot be synced, and the WAL still holds everything', async () => {
      const { sync, calls } = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, wal, { frames: 20, syncDatabase: sync });
      writeUntilCheckpoint(checkpoints);
      const rows = (db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n;
      await until(() => calls.length === 1);
      calls[0]!(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
      await checkpoints.idle();
      expect(() => checkpoints.writeHold()).toThrow(StoreUnavailableError);
      expect(() => checkpoints.writeHold()).toThrow(/restart Inlet/);
      expect(checkpoints.failure).toBeInstanceOf(StoreUnavailableError);
      checkpoints.close();
      db.close();
      const reopened = new Database(path);
      expect(reopened.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: rows });
      reopened.close();
      db = new Database(':memory:');
    });

    it('tries again at the next write that succeeds when a checkpoint failed before copying (a full disk)', async () => {
      const walSync = controlledSync();
      const failingWal = new WalSync(path, walSync.sync);
      const dbSync = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, failingWal, {
        frames: 20,
        syncDatabase: dbSync.sync,
      });
      writeUntilCheckpoint(checkpoints);
      const framesBefore = checkpoints.walFrames();
      // The WAL cannot be synced: nothing is copied, the checkpoint gives up for now.
      await until(() => walSync.calls.length === 1);
      walSync.calls[0]!(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
      await checkpoints.idle();
      expect(checkpoints.writeHold()).toBeUndefined();
      expect(dbSync.calls).toHaveLength(0);
      // The disk has room again: the next write that succeeds starts the next try at once.
      insert.run();
      checkpoints.committed();
      expect(checkpoints.checkpointing).toBe(true);
      for (const pass of [1, 2]) {
        await until(() => walSync.calls.length === pass + 1);
        walSync.calls[pass]!(null);
        await until(() => dbSync.calls.length === pass);
        dbSync.calls[pass - 1]!(null);
      }
      await checkpoints.idle();
      insert.run();
      expect(checkpoints.walFrames()).toBeLessThan(framesBefore);
      checkpoints.close();
      failingWal.close();
    });

    it('after a failed try, waits for twice as many new frames before each next one', async () => {
      const walSync = controlledSync();
      const failingWal = new WalSync(path, walSync.sync);
      const checkpoints = new WalCheckpointer(db, path, failingWal, { frames: 20 });
      writeUntilCheckpoint(checkpoints);
      const failNextTry = async () => {
        await until(() => walSync.calls.length > 0);
        walSync.calls.shift()!(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC' }));
        await checkpoints.idle();
      };
      await failNextTry();
      /** Frames written from the failed try until the next one starts. */
      const framesUntilTry = () => {
        const from = checkpoints.walFrames();
        for (let writes = 0; !checkpoints.checkpointing && writes < 100; writes++) {
          insert.run();
          checkpoints.committed();
        }
        return checkpoints.walFrames() - from;
      };
      // A write adds a frame or a few: the tries come after at least 1, 2, 4, 8, 16 frames, then 20.
      const gaps: number[] = [];
      for (let i = 0; i < 7; i++) {
        gaps.push(framesUntilTry());
        await failNextTry();
      }
      const least = [1, 2, 4, 8, 16, 20, 20];
      gaps.forEach((gap, i) => {
        expect(gap).toBeGreaterThanOrEqual(least[i]!);
        expect(gap).toBeLessThan(least[i]! + 4);
      });
      checkpoints.close();
      failingWal.close();
    });

    it("hands checkpoints back to SQLite when it cannot read the WAL's size", () => {
      const warnings: string[] = [];
      const logger = {
        info: () => undefined,
        warn: (_: object, msg?: string) => void warnings.push(msg ?? ''),
      };
      const checkpoints = new WalCheckpointer(db, path, wal, { frames: 20, logger });
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      unlinkSync(`${path}-shm`);
      insert.run();
      checkpoints.committed();
      expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(20);
      expect(warnings).toEqual(['cannot read the WAL size; SQLite checkpoints automatically from now on']);
      expect(checkpoints.writeHold()).toBeUndefined();
      checkpoints.close();
    });

    it('does not try again after every commit while a reader keeps frames in the WAL', async () => {
      const reader = new Database(path, { readonly: true });
      reader.prepare('BEGIN').run();
      insert.run();
      reader.prepare('SELECT count(*) FROM t').get();
      const { sync, calls } = controlledSync();
      const checkpoints = new WalCheckpointer(db, path, wal, { frames: 20, syncDatabase: sync });
      writeUntilCheckpoint(checkpoints);
      await until(() => calls.length === 1);
      calls[0]!(null);
      await until(() => calls.length === 2);
      calls[1]!(null);
      await checkpoints.idle();
      // The reader's frames could not be copied: no new checkpoint until 20 more frames.
      insert.run();
      checkpoints.committed();
      expect(checkpoints.checkpointing).toBe(false);
      reader.prepare('COMMIT').run();
      reader.close();
      checkpoints.close();
    });
  });

  describe('the WAL kept after a failed sync', () => {
    beforeEach(async () => {
      const store = await openSqliteStore(path, { mode: 'serve' });
      await store.commitEvents([event(1)]);
      // Left open on purpose: a WAL on disk, as after a kill.
      void store;
    });

    it('only loses its second name when the WAL is still the same file', () => {
      linkSync(`${path}-wal`, keptWalPath(path));
      restoreKeptWal(path);
      expect(existsSync(keptWalPath(path))).toBe(false);
      expect(existsSync(`${path}-wal`)).toBe(true);
    });

    it('refuses to choose between it and a different WAL that holds commits', () => {
      writeFileSync(keptWalPath(path), 'an older WAL');
      expect(() => restoreKeptWal(path)).toThrow(/move one of them away/);
      expect(existsSync(keptWalPath(path))).toBe(true);
    });

    it('is put back when the WAL is gone', () => {
      writeFileSync(keptWalPath(path), 'the kept frames');
      unlinkSync(`${path}-wal`);
      restoreKeptWal(path);
      expect(existsSync(keptWalPath(path))).toBe(false);
      expect(statSync(`${path}-wal`).size).toBe('the kept frames'.length);
    });
  });
});
