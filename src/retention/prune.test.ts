import { mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileArchiveStorage } from '../archive/file-storage.js';
import { makeEvent } from '../store/store-contract.test-suite.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { runPrune, type PruneProgress } from './prune.js';

const DAY_MS = 86_400_000;
const sha = (c: string) => c.repeat(64);

describe('runPrune', () => {
  let dir: string;
  let store: SqliteStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-prune-'));
    store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
  });

  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function oldEvents(count: number) {
    const at = Date.now() - 40 * DAY_MS;
    for (let i = 0; i < count; i++) {
      await store.commitEvents([
        makeEvent(
          `k${i}`,
          { id: `p${i % 3}`, status: 'processing', logs: 'x'.repeat(i) },
          { receivedAtMs: at + i },
        ),
      ]);
    }
  }

  it('walks every table to the end in growing windows, reporting progress up to 1', async () => {
    await oldEvents(30);
    const progress: PruneProgress[] = [];
    const report = await runPrune(store, {
      cutoffMs: Date.now() + 60_000,
      window: { initialRows: 2, minRows: 1, pauseMs: 0 },
      onProgress: (p) => progress.push(p),
    });
    // Three folded states keep their winning events; transitions are recorded now, before the cutoff.
    expect(report.deleted).toMatchObject({ events: 27, transitions: 30, messages: 0, rejections: 0 });
    expect(report.windows).toBeGreaterThan(4);
    const fractions = progress.map((p) => p.fraction);
    expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
    expect(fractions.at(-1)).toBe(1);
    expect(progress.at(-1)?.deleted.events).toBe(27);
    expect((await store.listEvents('p0', { limit: 100 })).items).toHaveLength(1);
  });

  it('stops between windows when aborted', async () => {
    await oldEvents(10);
    const abort = new AbortController();
    const run = runPrune(store, {
      cutoffMs: Date.now() + 60_000,
      window: { initialRows: 1, minRows: 1, maxRows: 1, pauseMs: 50 },
      signal: abort.signal,
      onProgress: (p) => {
        if (p.deleted.transitions > 0) abort.abort();
      },
    });
    await expect(run).rejects.toThrow(/abort/i);
    expect(await store.transitions.listTransitions({ afterSeq: 0, limit: 100 })).toHaveLength(9);
  });

  it('removes archived files no row names, written before the cutoff and over an hour ago', async () => {
    const files = join(dir, 'files');
    const archive = new FileArchiveStorage(files);
    await archive.cleanUp();
    const old = new Date(Date.now() - 40 * DAY_MS);
    for (const name of [sha('a'), sha('b'), sha('c')]) await writeFile(join(files, name), name);
    await utimes(join(files, sha('a')), old, old);
    await utimes(join(files, sha('b')), old, old);
    await store.commitEvents([
      makeEvent('k1', { id: 'img', status: 'succeeded', output: 'https://replicate.delivery/a.png' }),
    ]);
    await store.recover.addArchiveFiles(
      'img',
      [
        {
          predictionId: 'img',
          path: 'output',
          sourceUrl: 'https://replicate.delivery/a.png',
          nextAttemptAtMs: 0,
        },
      ],
      Date.now(),
    );
    await store.recover.recordArchiveResult('img', 'output', {
      ok: true,
      sha256: sha('a'),
      size: 64,
      contentType: 'image/png',
      archivedAtMs: Date.now(),
    });
    const cutoffMs = Date.now() - 30 * DAY_MS;
    const dry = await runPrune(store, { cutoffMs, archive, dryRun: true });
    expect(dry.deleted.files).toBe(1);
    expect((await readdir(files)).sort()).toEqual(['.partial', sha('a'), sha('b'), sha('c')]);
    const real = await runPrune(store, { cutoffMs, archive });
    expect(real.deleted.files).toBe(1);
    // `a` is named by a row, `c` is recent; `b` is neither.
    expect((await readdir(files)).sort()).toEqual(['.partial', sha('a'), sha('c')]);
  });
});
