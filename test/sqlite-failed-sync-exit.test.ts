import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';

const STORE_MODULE = fileURLToPath(new URL('../dist/store/sqlite/sqlite-store.js', import.meta.url));
const DELIVERIES = 300;

/**
 * A process that commits deliveries until a checkpoint copies them into the database file, whose fsync
 * then fails. The failing sync also puts the file back as it was after the last good checkpoint, as a
 * kernel that dropped the unsynced pages would: from then on only the WAL holds the later deliveries. The process then
 * closes the store and ends on its own, as `serve` does on SIGTERM, letting better-sqlite3 close every
 * connection at exit.
 */
const CHILD = `
import { copyFileSync, fsync } from 'node:fs';
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const path = process.argv[2];
let syncs = 0;
let failed = false;
const store = await openSqliteStore(path, {
  mode: 'serve',
  checkpointFrames: 50,
  checkpointSync: (fd, done) => {
    // The first checkpoint (the schema, the first deliveries; two passes, a sync each) reaches the
    // disk; the next one does not.
    if (++syncs <= 2) {
      fsync(fd, (error) => {
        copyFileSync(path, path + '.before');
        done(error);
      });
      return;
    }
    copyFileSync(path + '.before', path);
    failed = true;
    done(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
  },
});
let acknowledged = 0;
for (let n = 0; n < ${DELIVERIES} && !failed; n++) {
  const body = JSON.stringify({ id: 'p' + n, status: 'succeeded', logs: 'x'.repeat(1500) });
  try {
    await store.commitEvents([{ key: 'msg_' + n, scheme: 'standard', receivedAtMs: Date.now(),
      webhookTimestampSec: 1700000000, headers: {}, body: Buffer.from(body), object: JSON.parse(body) }]);
    acknowledged++;
  } catch (error) {
    if (!failed) throw error;
  }
}
if (!failed) throw new Error('no checkpoint failed');
await store.close();
process.stdout.write(String(acknowledged));
`;

function run(script: string, path: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, path], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject).once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a failed database-file fsync, then a graceful exit', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-failed-sync-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves the WAL on disk, and the next start recovers every committed delivery from it', async () => {
    if (!existsSync(STORE_MODULE)) throw new Error('dist/ is missing: run `npm run build`');
    const script = join(dir, 'child.mjs');
    const path = join(dir, 'inlet.db');
    await writeFile(script, CHILD);
    const { code, stdout, stderr } = await run(script, path);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    // Whatever the exit deleted, the WAL's frames are still on disk under one of its names.
    expect(existsSync(`${path}-wal`) || existsSync(`${path}-wal.keep`)).toBe(true);

    // The database file was put back to its state at the last good checkpoint: whatever the next start
    // finds after it, it recovered from the WAL.
    const store = await openSqliteStore(path, { mode: 'serve' });
    await store.close();
    expect(existsSync(`${path}-wal.keep`)).toBe(false);
    const db = new Database(path, { readonly: true });
    const events = (db.prepare('SELECT count(*) AS n FROM events').get() as { n: number }).n;
    db.close();
    // Every delivery whose commit was acknowledged, those only the WAL held included.
    const acknowledged = Number(stdout);
    expect(acknowledged).toBeGreaterThan(3);
    expect(events).toBe(acknowledged);
  });
});
