import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { controlledSync } from './controlled-sync.test-suite.js';
import { WalSync } from './wal-sync.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('WalSync', () => {
  let dir: string;
  let db: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-walsync-'));
    db = join(dir, 'inlet.db');
    await writeFile(`${db}-wal`, 'frames');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('answers a commit only after a sync that started after it has returned', async () => {
    const { sync, calls } = controlledSync();
    const wal = new WalSync(db, sync);
    let durable = false;
    void wal.durable().then(() => (durable = true));
    expect(calls).toHaveLength(1);
    await tick();
    expect(durable).toBe(false);
    calls[0]!(null);
    await tick();
    expect(durable).toBe(true);
    wal.close();
  });

  it('does not let a sync that started before a commit answer it', async () => {
    const { sync, calls } = controlledSync();
    const wal = new WalSync(db, sync);
    const done: string[] = [];
    void wal.durable().then(() => done.push('first'));
    void wal.durable().then(() => done.push('second'));
    // The second commit came during the first sync: a second sync covers it, overlapping the first.
    expect(calls).toHaveLength(2);
    calls[0]!(null);
    await tick();
    expect(done).toEqual(['first']);
    calls[1]!(null);
    await tick();
    expect(done).toEqual(['first', 'second']);
    wal.close();
  });

  it('covers every commit made before a sync with that one sync', async () => {
    const { sync, calls } = controlledSync();
    const wal = new WalSync(db, sync);
    const done: number[] = [];
    // Two syncs in flight at most: commits 3 to 5 wait for a third that starts once one returns.
    for (let i = 1; i <= 5; i++) void wal.durable().then(() => done.push(i));
    expect(calls).toHaveLength(2);
    calls[1]!(null);
    await tick();
    expect(done).toEqual([1, 2]);
    expect(calls).toHaveLength(3);
    calls[2]!(null);
    await tick();
    expect(done).toEqual([1, 2, 3, 4, 5]);
    calls[0]!(null);
    await tick();
    expect(done).toEqual([1, 2, 3, 4, 5]);
    wal.close();
  });

  it('fails the commits a failed sync covered, and later ones still sync', async () => {
    const { sync, calls } = controlledSync();
    const wal = new WalSync(db, sync);
    const failed = wal.durable();
    calls[0]!(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(failed).rejects.toThrow(/EIO/);
    const next = wal.durable();
    calls[1]!(null);
    await expect(next).resolves.toBeUndefined();
    wal.close();
  });

  it('fails the commit when the WAL cannot be opened', async () => {
    const wal = new WalSync(join(dir, 'missing.db'));
    await expect(wal.durable()).rejects.toThrow(/ENOENT/);
  });

  it('settles only once every waiting commit is answered', async () => {
    const { sync, calls } = controlledSync();
    const wal = new WalSync(db, sync);
    await wal.settled();
    void wal.durable();
    let settled = false;
    void wal.settled().then(() => (settled = true));
    await tick();
    expect(settled).toBe(false);
    calls[0]!(null);
    await tick();
    expect(settled).toBe(true);
    wal.close();
  });

  it('really syncs the WAL file with the default fdatasync', async () => {
    const wal = new WalSync(db);
    await expect(Promise.all([wal.durable(), wal.durable(), wal.durable()])).resolves.toHaveLength(3);
    await wal.settled();
    wal.close();
  });
});
