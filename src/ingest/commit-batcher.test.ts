import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StoreUnavailableError } from '../store/errors.js';
import type { IncomingEvent, Store } from '../store/types.js';
import { CommitBatcher } from './commit-batcher.js';

const logger = pino({ level: 'silent' });

/** A store whose commits and probe writes fail with `failure()` while it returns an error. */
function fakeStore(failure: () => Error | undefined) {
  const calls = { commits: 0, probes: 0 };
  let holdProbe: Promise<void> | undefined;
  let holdCommit: Promise<void> | undefined;
  const store = {
    capabilities: {
      maxConcurrentCommits: 1,
      multiInstance: false,
      skipLocked: false,
      crossProcessNotify: false,
    },
    commitEvents: async (events: readonly IncomingEvent[]) => {
      calls.commits++;
      await holdCommit;
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
    holdCommits: (until: Promise<void> | undefined) => {
      holdCommit = until;
    },
  };
}

function event(key: string, objectId = `pred_${key}`): IncomingEvent {
  return {
    key,
    scheme: 'standard',
    receivedAtMs: 0,
    webhookTimestampSec: null,
    headers: {},
    body: Buffer.from('{}'),
    object: { id: objectId, status: 'starting' },
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

/** A store that records each commit's keys and the (fake) time of it, and answers as `answer` says. */
function recordingStore(
  answer: (keys: string[]) => Promise<void> | void = () => undefined,
  maxConcurrentCommits = 1,
  oneCommitPerObject = false,
  concurrentCommitBacklog?: number,
) {
  const commits: { keys: string[]; atMs: number }[] = [];
  const store = {
    capabilities: {
      maxConcurrentCommits,
      oneCommitPerObject,
      concurrentCommitBacklog,
      multiInstance: false,
      skipLocked: false,
      crossProcessNotify: false,
    },
    commitEvents: async (events: readonly IncomingEvent[]) => {
      const keys = events.map((e) => e.key);
      commits.push({ keys, atMs: Date.now() });
      await answer(keys);
      return events.map((e) => ({ duplicate: e.key.startsWith('dup'), applied: true, conflict: false }));
    },
    probeWrite: async () => undefined,
  } as unknown as Store;
  return { store, commits };
}

/**
 * The store refuses commits (unavailable) until a first delivery has been answered timeout, then comes
 * back, and a second delivery is submitted: what was seen during the outage, and the second's result
 * `waitMs` later.
 */
async function storeBackAfterATimeout(
  options: { commitTimeoutMs: number; maxRetryDelayMs: number },
  waitMs: number,
) {
  vi.useFakeTimers();
  let failing = true;
  const { store, commits } = recordingStore(() => {
    if (failing) throw new StoreUnavailableError('connection refused');
  });
  const batcher = new CommitBatcher(store, { ...options, retryDelayMs: 20, logger });
  const results: unknown[] = [];
  void batcher.submit(event('gone')).then((r) => (results[0] = r));
  await vi.advanceTimersByTimeAsync(options.commitTimeoutMs);
  const during = { first: results[0], healthy: batcher.healthy, commits: [...commits] };
  failing = false;
  void batcher.submit(event('kept')).then((r) => (results[1] = r));
  await vi.advanceTimersByTimeAsync(waitMs);
  return { during, second: results[1], commits };
}

function deferred(): { promise: Promise<void>; resolve(): void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A recording store whose first commit waits until `held.resolve()`. */
function firstCommitHeld(
  maxConcurrentCommits = 1,
  oneCommitPerObject = false,
  concurrentCommitBacklog?: number,
) {
  const held = deferred();
  let first = true;
  const recording = recordingStore(
    async () => {
      if (first) {
        first = false;
        await held.promise;
      }
    },
    maxConcurrentCommits,
    oneCommitPerObject,
    concurrentCommitBacklog,
  );
  return { ...recording, held };
}

describe('CommitBatcher group commit', () => {
  it('commits what was submitted in one turn as one batch, each caller getting its own outcome', async () => {
    const { store, commits } = recordingStore();
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    const results = await Promise.all(['a', 'dup-b', 'c'].map((k) => batcher.submit(event(k))));
    expect(commits.map((c) => c.keys)).toEqual([['a', 'dup-b', 'c']]);
    expect(results.map((r) => r.ok && r.outcome.duplicate)).toEqual([false, true, false]);
  });

  it('cuts batches at maxBatch, and what arrives during a commit joins the next one', async () => {
    const { store, commits, held } = firstCommitHeld();
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, maxBatch: 2, logger });
    const early = ['a', 'b', 'c'].map((k) => batcher.submit(event(k)));
    await expect.poll(() => commits.length).toBe(1);
    // One commit at a time (SQLite): these wait for the first and share the next with 'c'.
    const late = ['d', 'e'].map((k) => batcher.submit(event(k)));
    expect(batcher.pending).toBeGreaterThan(0);
    held.resolve();
    await Promise.all([...early, ...late]);
    expect(commits.map((c) => c.keys)).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
    await batcher.drain();
    expect(batcher.pending).toBe(0);
  });

  it('keeps an object that is committing out of the next batch when the store commits one batch per object, and lets the rest go', async () => {
    const { store, commits, held } = firstCommitHeld(4, true);
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    const early = batcher.submit(event('x-starting', 'x'));
    await expect.poll(() => commits.length).toBe(1);
    // x is committing: its later deliveries wait, in order; y's go in a batch of their own meanwhile.
    const late = [
      batcher.submit(event('x-processing', 'x')),
      batcher.submit(event('y-starting', 'y')),
      batcher.submit(event('x-succeeded', 'x')),
      batcher.submit(event('y-processing', 'y')),
    ];
    await expect.poll(() => commits.length).toBe(2);
    expect(commits[1]!.keys).toEqual(['y-starting', 'y-processing']);
    expect(batcher.pending).toBe(3);
    held.resolve();
    await Promise.all([early, ...late]);
    expect(commits.map((c) => c.keys)).toEqual([
      ['x-starting'],
      ['y-starting', 'y-processing'],
      ['x-processing', 'x-succeeded'],
    ]);
  });

  it('puts every waiting delivery in the next batch when the store takes commits over one object side by side', async () => {
    const { store, commits, held } = firstCommitHeld(4);
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    const early = batcher.submit(event('x-starting', 'x'));
    await expect.poll(() => commits.length).toBe(1);
    const late = [batcher.submit(event('x-processing', 'x')), batcher.submit(event('y-starting', 'y'))];
    await Promise.all(late);
    expect(commits[1]!.keys).toEqual(['x-processing', 'y-starting']);
    held.resolve();
    await early;
  });

  it('starts a commit beside a running one only once the backlog the store asks for is waiting', async () => {
    const { store, commits, held } = firstCommitHeld(4, true, 3);
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    const early = batcher.submit(event('a'));
    await expect.poll(() => commits.length).toBe(1);
    const waiting = [batcher.submit(event('b')), batcher.submit(event('c'))];
    // Two waiting, fewer than 3: they wait for the running commit rather than start one of their own.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits).toHaveLength(1);
    const third = batcher.submit(event('d'));
    await Promise.all([...waiting, third]);
    expect(commits.map((c) => c.keys)).toEqual([['a'], ['b', 'c', 'd']]);
    // Below the backlog, what waits goes in the commit after the running one.
    const held2 = batcher.submit(event('e'));
    held.resolve();
    await Promise.all([early, held2]);
    expect(commits.map((c) => c.keys)).toEqual([['a'], ['b', 'c', 'd'], ['e']]);
  });

  it('wakes transition listeners after a commit that applied a change', async () => {
    const { store } = recordingStore();
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    let wakes = 0;
    const unsubscribe = batcher.onTransitions(() => wakes++);
    await batcher.submit(event('a'));
    expect(wakes).toBe(1);
    unsubscribe();
    await batcher.submit(event('b'));
    expect(wakes).toBe(1);
  });
});

describe('CommitBatcher when commits fail', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers timeout when the commit does not land within the commit timeout', async () => {
    vi.useFakeTimers();
    const held = deferred();
    const { store } = recordingStore(() => held.promise);
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 1000, logger });
    let result: unknown;
    void batcher.submit(event('a')).then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(999);
    expect(result).toBeUndefined();
    await vi.advanceTimersByTimeAsync(1);
    expect(result).toEqual({ ok: false, reason: 'timeout' });
    // The commit landing later does not change the answer given.
    held.resolve();
    await batcher.drain();
    expect(result).toEqual({ ok: false, reason: 'timeout' });
  });

  it('retries an unavailable store with a doubling pause up to the maximum, then commits', async () => {
    vi.useFakeTimers();
    let failures = 6;
    const { store, commits } = recordingStore(() => {
      if (failures > 0) {
        failures--;
        throw new StoreUnavailableError('database is locked');
      }
    });
    const batcher = new CommitBatcher(store, {
      commitTimeoutMs: 60_000,
      retryDelayMs: 20,
      maxRetryDelayMs: 100,
      logger,
    });
    let result: unknown;
    void batcher.submit(event('a')).then((r) => (result = r));
    await vi.advanceTimersByTimeAsync(1000);
    expect(result).toMatchObject({ ok: true });
    // The pause, plus the turn (setImmediate) the retry waits for to gather a batch.
    const pauses = commits.slice(1).map((c, i) => c.atMs - commits[i]!.atMs);
    expect(pauses).toHaveLength(6);
    pauses.forEach((pause, i) => expect(pause - [20, 40, 80, 100, 100, 100][i]!).toBeOneOf([0, 1]));
    expect(batcher.healthy).toBe(true);

    // A success resets the pause: the next outage starts again at 20 ms.
    failures = 1;
    void batcher.submit(event('b'));
    await vi.advanceTimersByTimeAsync(1000);
    const [failed, retried] = commits.slice(-2);
    expect(retried!.atMs - failed!.atMs - 20).toBeOneOf([0, 1]);
  });

  it('pauses at most a quarter of the commit timeout, so a delivery that comes as the store returns is committed', async () => {
    const { during, second } = await storeBackAfterATimeout(
      { commitTimeoutMs: 500, maxRetryDelayMs: 1000 },
      126,
    );
    expect(during.first).toEqual({ ok: false, reason: 'timeout' });
    const pauses = during.commits.slice(1).map((c, i) => c.atMs - during.commits[i]!.atMs);
    expect(Math.max(...pauses)).toBeLessThanOrEqual(126);
    // The store came back while a pause ran: the next delivery waited for its end, not for its timeout.
    expect(second).toMatchObject({ ok: true });
  });

  it('does not commit a delivery that was already answered timeout while the store was away', async () => {
    const { during, second, commits } = await storeBackAfterATimeout(
      { commitTimeoutMs: 100, maxRetryDelayMs: 20 },
      100,
    );
    expect(during.first).toEqual({ ok: false, reason: 'timeout' });
    expect(during.healthy).toBe(false);
    expect(second).toMatchObject({ ok: true });
    expect(commits.at(-1)!.keys).toEqual(['kept']);
    expect(commits.filter((c) => c.keys.includes('gone') && c.keys.includes('kept'))).toEqual([]);
  });

  it('on an unexpected error commits the batch one by one, so one bad event fails alone', async () => {
    const { store, commits } = recordingStore((keys) => {
      if (keys.includes('bad')) throw new Error('value too long for type');
    });
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    let wakes = 0;
    batcher.onTransitions(() => wakes++);
    const results = await Promise.all(['a', 'bad', 'c'].map((k) => batcher.submit(event(k))));
    expect(results.map((r) => r.ok)).toEqual([true, false, true]);
    expect(results[1]).toEqual({ ok: false, reason: 'error' });
    expect(commits.map((c) => c.keys)).toEqual([['a', 'bad', 'c'], ['a'], ['bad'], ['c']]);
    expect(wakes).toBe(2);
  });

  it('answers error at once, without retrying, when a single event fails unexpectedly', async () => {
    const { store, commits } = recordingStore(() => {
      throw new Error('permission denied for table events');
    });
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    expect(await batcher.submit(event('a'))).toEqual({ ok: false, reason: 'error' });
    await batcher.drain();
    expect(commits).toHaveLength(1);
    expect(batcher.healthy).toBe(false);
  });
});

describe('CommitBatcher crowding', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('is crowded while many webhooks wait for their commit on average, not after a lone spike, and not once they stop coming', async () => {
    let release!: () => void;
    const { store, holdCommits } = fakeStore(() => undefined);
    holdCommits(new Promise<void>((resolve) => (release = resolve)));
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    expect(batcher.crowded).toBe(false);

    // A spike: 20 wait at once, once. The average of the last ~64 arrivals stays low.
    const spike = Array.from({ length: 20 }, (_, i) => batcher.submit(event(`s${i}`)));
    expect(batcher.pending).toBe(20);
    expect(batcher.crowded).toBe(false);
    release();
    holdCommits(undefined);
    await Promise.all(spike);

    // Saturated: every arrival finds 40 or more waiting.
    holdCommits(new Promise<void>((resolve) => (release = resolve)));
    const held = Array.from({ length: 200 }, (_, i) => batcher.submit(event(`h${i}`)));
    expect(batcher.crowded).toBe(true);
    release();
    holdCommits(undefined);
    await Promise.all(held);
    // Still crowded on average right after; no longer once no webhook came for the window.
    expect(batcher.crowded).toBe(true);
    const now = performance.now();
    const later = vi.spyOn(performance, 'now').mockReturnValue(now + 201); // past CROWDED_WINDOW_MS
    expect(batcher.crowded).toBe(false);
    later.mockRestore();

    // Steady, one at a time: the average decays below the threshold.
    for (let i = 0; i < 200; i++) await batcher.submit(event(`q${i}`));
    expect(batcher.crowded).toBe(false);
  });

  it("is calm only when no webhook is queued or committing; never as a commit's own listeners run", async () => {
    let release!: () => void;
    const { store, holdCommits } = fakeStore(() => undefined);
    holdCommits(new Promise<void>((resolve) => (release = resolve)));
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger });
    expect(batcher.calm).toBe(true);
    const seen: boolean[] = [];
    batcher.onTransitions(() => seen.push(batcher.calm));
    const committed = batcher.submit(event('a'));
    expect(batcher.calm).toBe(false); // queued
    await new Promise((resolve) => setImmediate(resolve));
    expect(batcher.calm).toBe(false); // committing
    release();
    holdCommits(undefined);
    await committed;
    // Its listeners ran while its batch still counted, with nothing else waiting.
    expect(seen).toEqual([false]);
    expect(batcher.calm).toBe(true);
  });

  it('once crowded, stays so until the average falls below 10, and a pause starts it again', async () => {
    // Commits of one event each, finished one by one by the test: `pending` is exactly what it holds.
    const open: (() => void)[] = [];
    const { store } = recordingStore(() => new Promise<void>((resolve) => open.push(resolve)));
    const batcher = new CommitBatcher(store, { commitTimeoutMs: 10_000, logger, maxBatch: 1 });
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    let n = 0;
    const all: Promise<unknown>[] = [];
    const submit = () => all.push(batcher.submit(event(`e${n++}`)));
    /** `count` arrivals, each finding `waiting` webhooks (itself included) waiting; crowded after each. */
    const steady = async (waiting: number, count: number) => {
      while (batcher.pending < waiting - 1) submit();
      const seen: boolean[] = [];
      for (let i = 0; i < count; i++) {
        submit();
        expect(batcher.pending).toBe(waiting);
        seen.push(batcher.crowded);
        await turn();
        open.shift()!();
        await turn();
        await turn();
      }
      return seen;
    };
    const finishAll = async () => {
      while (batcher.pending > 0) {
        open.shift()?.();
        await turn();
        await turn();
      }
    };

    // 12 waiting at every arrival: never crowded from a calm start.
    expect((await steady(12, 300)).some(Boolean)).toBe(false);
    // Saturated: crowded.
    for (let i = 0; i < 100; i++) submit();
    expect(batcher.crowded).toBe(true);
    await finishAll();
    // Back to 12 at every arrival: still crowded throughout; 1 at a time: not, soon.
    expect((await steady(12, 300)).every(Boolean)).toBe(true);
    await finishAll();
    expect((await steady(1, 200)).at(-1)).toBe(false);

    // Crowded again, then a pause longer than the window: the next arrivals start from nothing.
    for (let i = 0; i < 100; i++) submit();
    expect(batcher.crowded).toBe(true);
    await finishAll();
    const now = performance.now();
    vi.spyOn(performance, 'now').mockReturnValue(now + 201);
    expect((await steady(12, 50)).some(Boolean)).toBe(false);
    await finishAll();
    await Promise.all(all);
  });
});
