import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { StoreUnavailableError } from '../store/errors.js';
import type { IncomingEvent, Store } from '../store/types.js';
import { CommitBatcher } from './commit-batcher.js';

const logger = pino({ level: 'silent' });

/** A store whose commits and probe writes fail with `failure()` while it returns an error. */
function fakeStore(failure: () => Error | undefined) {
  const calls = { commits: 0, probes: 0 };
  let holdProbe: Promise<void> | undefined;
  const store = {
    capabilities: { maxConcurrentCommits: 1, multiInstance: false },
    commitEvents: async (events: readonly IncomingEvent[]) => {
      calls.commits++;
      const error = failure();
      if (error !== undefined) throw error;
      return events.map(() => ({ duplicate: false, applied: true, conflict: false }));
    },
    probeWrite: async () => {
      calls.probes++;
      await holdProbe;
      const error = failure();
      if (error !== undefined) throw error;
    },
  } as unknown as Store;
  return {
    store,
    calls,
    holdProbes: (until: Promise<void> | undefined) => {
      holdProbe = until;
    },
  };
}

function event(key: string): IncomingEvent {
  return {
    key,
    scheme: 'standard',
    receivedAtMs: 0,
    webhookTimestampSec: null,
    headers: {},
    body: Buffer.from('{}'),
    object: { id: `pred_${key}`, status: 'starting' },
  };
}

function clock() {
  let nowMs = 1_000_000;
  return { now: () => nowMs, advance: (ms: number) => (nowMs += ms) };
}

const READINESS = { probeAfterMs: 5000, probeAfterFailureMs: 1000, probeTimeoutMs: 1000 };

describe('CommitBatcher readiness', () => {
  for (const [kind, makeError] of [
    ['unavailable', () => new StoreUnavailableError('disk full')],
    ['any other error', () => new Error('permission denied for table events')],
  ] as const) {
    it(`stays not ready while writes fail (${kind}), and is ready again once they work, without traffic`, async () => {
      let failing = true;
      const { store, calls } = fakeStore(() => (failing ? makeError() : undefined));
      const time = clock();
      const batcher = new CommitBatcher(store, {
        commitTimeoutMs: 50,
        retryDelayMs: 1,
        maxRetryDelayMs: 5,
        logger,
        readiness: { ...READINESS, now: time.now },
      });
      const result = await batcher.submit(event('a'));
      expect(result.ok).toBe(false);
      await batcher.drain();
      expect(await batcher.ready()).toBe(false);
      expect(batcher.healthy).toBe(false);

      // Long after the last failed commit, a probe write decides: it fails too.
      time.advance(60_000);
      expect(await batcher.ready()).toBe(false);
      expect(calls.probes).toBe(1);
      time.advance(60_000);
      expect(await batcher.ready()).toBe(false);
      expect(calls.probes).toBe(2);

      failing = false;
      // The failed probe answers for a moment; then a new probe finds the store mended.
      expect(await batcher.ready()).toBe(false);
      time.advance(READINESS.probeAfterFailureMs);
      expect(await batcher.ready()).toBe(true);
      expect(batcher.healthy).toBe(true);
      expect(calls.probes).toBe(3);
    });
  }

  it('answers from a recent commit without probing, and probes once for many callers when idle', async () => {
    const { store, calls } = fakeStore(() => undefined);
    const time = clock();
    const batcher = new CommitBatcher(store, {
      commitTimeoutMs: 1000,
      logger,
      readiness: { ...READINESS, now: time.now },
    });
    expect((await batcher.submit(event('b'))).ok).toBe(true);
    time.advance(READINESS.probeAfterMs - 1);
    expect(await batcher.ready()).toBe(true);
    expect(calls.probes).toBe(0);
    time.advance(1);
    expect(await Promise.all([batcher.ready(), batcher.ready(), batcher.ready()])).toEqual([
      true,
      true,
      true,
    ]);
    expect(calls.probes).toBe(1);
  });

  it('a commit that fails right after a good probe makes it not ready at once', async () => {
    const state: { failure?: Error } = {};
    const { store } = fakeStore(() => state.failure);
    const time = clock();
    const batcher = new CommitBatcher(store, {
      commitTimeoutMs: 50,
      logger,
      readiness: { ...READINESS, now: time.now },
    });
    expect(await batcher.ready()).toBe(true);
    state.failure = new Error('new row for relation "events" violates check constraint');
    expect((await batcher.submit(event('c'))).ok).toBe(false);
    expect(await batcher.ready()).toBe(false);
  });

  it('a probe that does not finish in time answers not ready, and its outcome counts when it ends', async () => {
    const { store, calls, holdProbes } = fakeStore(() => undefined);
    const time = clock();
    const batcher = new CommitBatcher(store, {
      commitTimeoutMs: 1000,
      logger,
      readiness: { ...READINESS, probeTimeoutMs: 20, now: time.now },
    });
    let release!: () => void;
    holdProbes(new Promise<void>((resolve) => (release = resolve)));
    expect(await batcher.ready()).toBe(false);
    expect(calls.probes).toBe(1);
    holdProbes(undefined);
    release();
    await expect.poll(() => batcher.healthy).toBe(true);
    // The probe still in flight finished: its success answers, no second probe.
    expect(await batcher.ready()).toBe(true);
    expect(calls.probes).toBe(1);
  });
});
