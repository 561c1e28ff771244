/**
 * Behaviour of the reconcile and archive tables every dialect must show, through `store.recover` only:
 * `runRecoverContract('sqlite', createStore)` from a dialect's own test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeEvent, type StoreFixture } from './store-contract.test-suite.js';
import type { Store } from './types.js';

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0, 0);

export function runRecoverContract(name: string, createStore: () => Promise<StoreFixture>): void {
  describe(`RecoverStore contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fixture = await createStore();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    it('tracks an object once and lists it when its poll is due', async () => {
      await store.recover.track({
        id: 'p1',
        kind: 'prediction',
        source: 'predict',
        createdAtMs: T0,
        nextPollAtMs: T0 + 1000,
      });
      await store.recover.track({
        id: 'p1',
        kind: 'training',
        source: 'stale',
        createdAtMs: T0 + 5,
        nextPollAtMs: T0,
      });
      expect(await store.recover.getTracked('p1')).toEqual({
        id: 'p1',
        kind: 'prediction',
        source: 'predict',
        createdAtMs: T0,
        lastPolledAtMs: null,
        nextPollAtMs: T0 + 1000,
        attempts: 0,
        done: false,
      });
      expect(await store.recover.listDuePolls(T0 + 999, 10)).toEqual([]);
      expect((await store.recover.listDuePolls(T0 + 1000, 10)).map((t) => t.id)).toEqual(['p1']);
      await store.recover.updatePoll('p1', {
        polledAtMs: T0 + 1000,
        nextPollAtMs: T0 + 3000,
        done: false,
        attempted: true,
      });
      expect(await store.recover.getTracked('p1')).toMatchObject({
        lastPolledAtMs: T0 + 1000,
        nextPollAtMs: T0 + 3000,
        attempts: 1,
      });
      await store.recover.updatePoll('p1', {
        polledAtMs: null,
        nextPollAtMs: T0,
        done: true,
        attempted: false,
      });
      expect(await store.recover.getTracked('p1')).toMatchObject({ lastPolledAtMs: T0 + 1000, done: true });
      expect(await store.recover.listDuePolls(T0 + 10_000, 10)).toEqual([]);
      expect(await store.recover.getTracked('nope')).toBeUndefined();
    });

    it('tracks stale objects: not terminal, quiet long enough, not too old, not tracked yet', async () => {
      const at = (minutes: number) => T0 + minutes * 60_000;
      await store.commitEvents([
        makeEvent('a', { id: 'quiet', status: 'processing' }, { receivedAtMs: at(0) }),
        makeEvent('b', { id: 'recent', status: 'processing' }, { receivedAtMs: at(9) }),
        makeEvent('c', { id: 'ended', status: 'succeeded' }, { receivedAtMs: at(0) }),
        makeEvent('d', { id: 'ancient', status: 'starting' }, { receivedAtMs: at(-2000) }),
        makeEvent(
          'e',
          {
            id: 'trained',
            status: 'processing',
            output: { version: null, weights: null },
          },
          { receivedAtMs: at(1) },
        ),
      ]);
      const query = { quietSinceMs: at(5), firstSeenAfterMs: at(-1440), nowMs: at(10), limit: 100 };
      expect(await store.recover.trackStale(query)).toBe(2);
      expect(await store.recover.trackStale(query)).toBe(0);
      const due = await store.recover.listDuePolls(at(10), 10);
      expect(due.map((t) => [t.id, t.kind, t.source]).sort()).toEqual([
        ['quiet', 'prediction', 'stale'],
        ['trained', 'training', 'stale'],
      ]);
      expect(due[0]?.createdAtMs).toBe(at(0));
    });

    it('lists succeeded objects to archive once, keeps file rows and their results', async () => {
      await store.commitEvents([
        makeEvent('a', { id: 'img', status: 'succeeded', output: ['https://x/1.png'] }, { receivedAtMs: T0 }),
        makeEvent('b', { id: 'bad', status: 'failed' }, { receivedAtMs: T0 }),
        makeEvent('c', { id: 'old', status: 'succeeded' }, { receivedAtMs: T0 - 10 }),
      ]);
      expect((await store.recover.listArchiveCandidates(T0 - 5, 10)).map((c) => c.id)).toEqual(['img']);
      await store.recover.addArchiveFiles(
        'img',
        [
          { predictionId: 'img', path: 'output[0]', sourceUrl: 'https://x/1.png', nextAttemptAtMs: T0 },
          { predictionId: 'img', path: 'output[1]', sourceUrl: 'https://x/2.png', nextAttemptAtMs: T0 + 5 },
        ],
        T0,
      );
      // Scanned: not a candidate any more; a repeated scan keeps the rows.
      expect(await store.recover.listArchiveCandidates(T0 - 5, 10)).toEqual([]);
      await store.recover.addArchiveFiles('img', [], T0);
      expect((await store.recover.listDueArchiveFiles(T0, 10)).map((f) => f.path)).toEqual(['output[0]']);

      await store.recover.recordArchiveResult('img', 'output[0]', {
        ok: true,
        sha256: 'ab'.repeat(32),
        size: 12,
        contentType: 'image/png',
        archivedAtMs: T0 + 1,
      });
      await store.recover.recordArchiveResult('img', 'output[1]', {
        ok: false,
        error: 'HTTP 404',
        nextAttemptAtMs: T0 + 100,
      });
      const files = await store.recover.listArchiveFiles('img');
      expect(files).toEqual([
        {
          predictionId: 'img',
          path: 'output[0]',
          sourceUrl: 'https://x/1.png',
          sha256: 'ab'.repeat(32),
          size: 12,
          contentType: 'image/png',
          archivedAtMs: T0 + 1,
          error: null,
          attempts: 1,
          nextAttemptAtMs: null,
        },
        {
          predictionId: 'img',
          path: 'output[1]',
          sourceUrl: 'https://x/2.png',
          sha256: null,
          size: null,
          contentType: null,
          archivedAtMs: null,
          error: 'HTTP 404',
          attempts: 1,
          nextAttemptAtMs: T0 + 100,
        },
      ]);
      expect((await store.recover.listDueArchiveFiles(T0 + 100, 10)).map((f) => f.path)).toEqual([
        'output[1]',
      ]);
      expect((await store.recover.findArchivedFile('ab'.repeat(32)))?.contentType).toBe('image/png');
      expect(await store.recover.findArchivedFile('cd'.repeat(32))).toBeUndefined();
    });
  });
}
