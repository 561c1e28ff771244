/**
 * Retention every dialect must show, through `store.retention` (and the public store API to set it up):
 * `runRetentionContract('sqlite', createStore)` from a dialect's own test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReplicateObject } from '../replicate/types.js';
import { PRUNE_TABLES, type PruneTable } from './retention-types.js';
import { makeEvent, type StoreFixture } from './store-contract.test-suite.js';
import type { TransitionRecord } from './transition-types.js';
import type { Store } from './types.js';

const T0 = Date.UTC(2026, 10, 1, 12, 0, 0, 0);
const OWNER = 'test-runner';

type Totals = Record<PruneTable, number> & { attempts: number };

/** Walks every table in windows of `limit` rows, as `inlet prune` does. */
async function pruneAll(store: Store, cutoffMs: number, dryRun: boolean, limit = 2): Promise<Totals> {
  const totals: Totals = { messages: 0, transitions: 0, events: 0, rejections: 0, attempts: 0 };
  for (const table of PRUNE_TABLES) {
    let afterSeq = 0;
    for (let windows = 0; windows < 1000; windows++) {
      const result = await store.retention.pruneWindow({ table, cutoffMs, afterSeq, limit, dryRun });
      totals[table] += result.deleted;
      totals.attempts += result.attempts;
      if (result.done) break;
      expect(result.lastSeq).toBeGreaterThan(afterSeq);
      afterSeq = result.lastSeq;
    }
  }
  return totals;
}

function prediction(id: string, status: string, extra: Partial<ReplicateObject> = {}): ReplicateObject {
  return { id, status, model: 'acme/painter', version: 'v1', input: { prompt: 'a cat' }, ...extra };
}

export function runRetentionContract(name: string, createStore: () => Promise<StoreFixture>): void {
  describe(`RetentionStore contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;
    beforeEach(async () => {
      fixture = await createStore();
      store = fixture.store;
    });
    afterEach(async () => {
      await fixture.cleanup();
    });

    async function consumer(name: string, startPosition: number) {
      await store.jobs.upsertConsumer({
        name,
        kind: 'destination',
        config: {},
        configHash: name,
        secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        startPosition,
        nowMs: T0,
      });
    }

    async function fanOut(name: string, from: number, transitions: readonly TransitionRecord[]) {
      const messages = transitions.map((t) => ({
        id: `msg_${name}_${t.id}`,
        transitionSeq: t.seq,
        transitionId: t.id,
        objectId: t.objectId,
        type: t.type,
        recordedAtMs: t.recordedAtMs,
      }));
      expect(await store.jobs.fanOut(name, from, transitions.at(-1)!.seq, messages, T0)).toBe(true);
    }

    async function attempt(name: string, messageId: string, state: 'delivered' | 'dead') {
      const claimed = await store.jobs.claim({
        consumer: name,
        owner: OWNER,
        nowMs: T0 + 1000,
        leaseMs: 60_000,
        limit: 100,
        maxInFlight: 100,
        ordered: false,
      });
      expect(claimed.map((m) => m.id)).toContain(messageId);
      await store.jobs.release(
        claimed.map((m) => m.id).filter((id) => id !== messageId),
        OWNER,
      );
      await store.jobs.complete(
        [
          {
            messageId,
            consumer: name,
            owner: OWNER,
            attempt: {
              atMs: T0 + 1000,
              status: state === 'delivered' ? 200 : 500,
              durationMs: 3,
              error: null,
            },
            verdict: { state },
          },
        ],
        T0 + 1000,
      );
    }

    /**
     * p1: starting → processing (logs) → succeeded, fanned out to `app` (started and completed delivered,
     * logs dead). p2: starting → succeeded after `late`'s position. Everything is older than the cutoff
     * but one event and one rejection.
     */
    async function seed(cutoffMs: number) {
      await store.commitEvents([makeEvent('ev1', prediction('p1', 'starting'), { receivedAtMs: T0 })]);
      await store.commitEvents([
        makeEvent('ev2', prediction('p1', 'processing', { logs: 'step 1' }), { receivedAtMs: T0 + 1 }),
      ]);
      await store.commitEvents([
        makeEvent('ev3', prediction('p1', 'succeeded', { logs: 'step 1', output: 'x' }), {
          receivedAtMs: T0 + 2,
        }),
      ]);
      const p1 = await store.transitions.listTransitions({ afterSeq: 0, limit: 10 });
      expect(p1.map((t) => t.type)).toEqual([
        'prediction.started',
        'prediction.logs',
        'prediction.completed',
      ]);
      await consumer('app', 0);
      await fanOut('app', 0, p1);
      await attempt('app', `msg_app_${p1[0]!.id}`, 'delivered');
      await attempt('app', `msg_app_${p1[1]!.id}`, 'dead');
      await attempt('app', `msg_app_${p1[2]!.id}`, 'delivered');
      await consumer('late', p1[2]!.seq);
      await store.commitEvents([makeEvent('ev4', prediction('p2', 'starting'), { receivedAtMs: T0 + 3 })]);
      await store.commitEvents([
        makeEvent('ev5', prediction('p2', 'succeeded', { output: 'y' }), { receivedAtMs: T0 + 4 }),
      ]);
      // `app` fans p2 out too, all delivered: only `late` holds p2's transitions back.
      const p2 = await store.transitions.listTransitions({ afterSeq: p1[2]!.seq, limit: 10 });
      await fanOut('app', p1[2]!.seq, p2);
      for (const t of p2) await attempt('app', `msg_app_${t.id}`, 'delivered');
      // A duplicate-free newer delivery of p2, received after the cutoff (kept, not applied).
      await store.commitEvents([
        makeEvent('ev6', prediction('p2', 'succeeded', { output: 'y' }), { receivedAtMs: cutoffMs + 60_000 }),
      ]);
      const rejection = (receivedAtMs: number) => ({
        receivedAtMs,
        code: 'invalid_signature',
        message: 'No signature matched',
        remoteAddress: '192.0.2.7',
        headers: {},
        body: Buffer.from('{}'),
      });
      await store.recordRejections([rejection(T0), rejection(T0 + 1), rejection(cutoffMs + 60_000)], {
        maxRows: 100,
        maxBodyBytes: 1024 * 1024,
      });
      return { p1, p2 };
    }

    async function eventKeys(objectId: string) {
      return (await store.listEvents(objectId, { limit: 100 })).items.map((e) => e.key);
    }

    it('deletes what is old and no longer needed, and keeps folded states and undelivered messages', async () => {
      // Transitions are recorded at commit time (now): a cutoff a minute ahead makes them old.
      const cutoffMs = Date.now() + 60_000;
      const { p1, p2 } = await seed(cutoffMs);

      const totals = await pruneAll(store, cutoffMs, false);
      expect(totals).toEqual({
        // p1's two delivered messages and p2's two, each with its one attempt; the dead one stays.
        messages: 4,
        attempts: 4,
        // p1's started and completed; its logs transition is the body of the dead message, and p2's
        // are not fanned out to `late` yet.
        transitions: 2,
        // ev1 only: ev2 is the dead message's transition's, ev3 and ev5 win, ev4 is p2's started.
        events: 1,
        rejections: 2,
      });

      expect((await store.getPrediction('p1'))?.object).toMatchObject({ status: 'succeeded', output: 'x' });
      expect((await store.getPrediction('p2'))?.object).toMatchObject({ status: 'succeeded', output: 'y' });
      expect(await eventKeys('p1')).toEqual(['ev2', 'ev3']);
      expect(await eventKeys('p2')).toEqual(['ev4', 'ev5', 'ev6']);
      const kept = await store.transitions.listTransitions({ afterSeq: 0, limit: 10 });
      expect(kept.map((t) => t.id)).toEqual([p1[1]!.id, ...p2.map((t) => t.id)]);
      // The dead message can still be retried: its transition and body are there.
      const dead = await store.jobs.getMessage(`msg_app_${p1[1]!.id}`);
      expect(dead).toMatchObject({ state: 'dead', attemptLog: [{ status: 500 }] });
      expect((await store.transitions.getTransition(p1[1]!.id))?.body.toString()).toContain('step 1');
      expect(await store.jobs.getMessage(`msg_app_${p1[0]!.id}`)).toBeUndefined();
      expect((await store.listRejections({ limit: 10 })).items.map((r) => r.receivedAtMs)).toEqual([
        cutoffMs + 60_000,
      ]);
      expect(await store.retention.laggingConsumer(cutoffMs)).toEqual({ name: 'late', position: p1[2]!.seq });

      // Once `late` is disabled it no longer holds p2's transitions (and ev4 with them) back.
      await store.jobs.setConsumerEnabled('late', { enabled: false, reason: 'test', nowMs: T0 });
      expect(await store.retention.laggingConsumer(cutoffMs)).toBeUndefined();
      const again = await pruneAll(store, cutoffMs, false);
      expect(again).toMatchObject({ messages: 0, transitions: 2, events: 1, rejections: 0 });
      expect(await eventKeys('p2')).toEqual(['ev5', 'ev6']);
      expect(await store.countPredictions()).toBe(2);
      expect(await pruneAll(store, cutoffMs, false)).toEqual({
        messages: 0,
        transitions: 0,
        events: 0,
        rejections: 0,
        attempts: 0,
      });
    });

    it('a dry run counts what a prune deletes, and deletes nothing', async () => {
      const cutoffMs = Date.now() + 60_000;
      await seed(cutoffMs);
      await store.jobs.setConsumerEnabled('late', { enabled: false, reason: 'test', nowMs: T0 });
      const before = {
        events: [...(await eventKeys('p1')), ...(await eventKeys('p2'))],
        transitions: await store.transitions.listTransitions({ afterSeq: 0, limit: 100 }),
        rejections: (await store.listRejections({ limit: 100 })).items.length,
      };
      const planned = await pruneAll(store, cutoffMs, true);
      expect(planned).toEqual({ messages: 4, attempts: 4, transitions: 4, events: 2, rejections: 2 });
      expect([...(await eventKeys('p1')), ...(await eventKeys('p2'))]).toEqual(before.events);
      expect(await store.transitions.listTransitions({ afterSeq: 0, limit: 100 })).toEqual(
        before.transitions,
      );
      expect((await store.listRejections({ limit: 100 })).items).toHaveLength(before.rejections);
      expect(await pruneAll(store, cutoffMs, false, 1000)).toEqual(planned);
    });

    it('nothing is older than a cutoff in the past', async () => {
      await seed(Date.now() + 60_000);
      expect(await pruneAll(store, T0 - 1, false)).toEqual({
        messages: 0,
        transitions: 0,
        events: 0,
        rejections: 0,
        attempts: 0,
      });
      expect(await store.retention.seqRange('events')).toMatchObject({ first: expect.any(Number) as number });
    });

    it('says which archived files a row still names', async () => {
      const sha = (c: string) => c.repeat(64);
      await store.commitEvents([
        makeEvent('ev1', prediction('img', 'succeeded', { output: ['https://replicate.delivery/a.png'] })),
      ]);
      await store.recover.addArchiveFiles(
        'img',
        [
          {
            predictionId: 'img',
            path: 'output[0]',
            sourceUrl: 'https://replicate.delivery/a.png',
            nextAttemptAtMs: T0,
          },
        ],
        T0,
      );
      await store.recover.recordArchiveResult('img', 'output[0]', {
        ok: true,
        sha256: sha('a'),
        size: 3,
        contentType: 'image/png',
        archivedAtMs: T0,
      });
      expect(await store.retention.referencedFiles([sha('a'), sha('b')])).toEqual(new Set([sha('a')]));
      expect(await store.retention.referencedFiles([])).toEqual(new Set());
    });
  });
}
