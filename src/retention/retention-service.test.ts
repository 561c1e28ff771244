import { describe, expect, it } from 'vitest';
import type { Clock } from '../clock.js';
import { ConfigError, parseServeConfig } from '../config.js';
import type { PruneWindow, RetentionStore } from '../store/retention-types.js';
import { RetentionService } from './retention-service.js';
import type { PruneReport } from './prune.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const parse = (flags: Record<string, string>, env: Record<string, string> = {}) =>
  parseServeConfig(flags, { REPLICATE_WEBHOOK_SECRET: SECRET, ...env }, { isTty: false });

describe('--retention', () => {
  it('is off unless given, and takes a duration from the flag or INLET_RETENTION', () => {
    expect(parse({}).retentionMs).toBeUndefined();
    expect(parse({ retention: '30d' }).retentionMs).toBe(30 * 86_400_000);
    expect(parse({}, { INLET_RETENTION: '12h' }).retentionMs).toBe(12 * 3_600_000);
    expect(parse({ retention: '90m' }, { INLET_RETENTION: '12h' }).retentionMs).toBe(90 * 60_000);
  });

  it('refuses anything but a duration with a unit, naming the setting', () => {
    expect(() => parse({ retention: '30' })).toThrow(ConfigError);
    expect(() => parse({ retention: '30' })).toThrow(/--retention must be a number with a unit.*got "30"/);
    expect(() => parse({}, { INLET_RETENTION: 'month' })).toThrow(/INLET_RETENTION must be/);
  });
});

/** A store whose every table is empty: each window is the last. */
function emptyStore(windows: PruneWindow[]): { retention: RetentionStore } {
  return {
    retention: {
      pruneWindow: async (window) => {
        windows.push(window);
        return { deleted: 0, attempts: 0, lastSeq: window.afterSeq, done: true };
      },
      seqRange: async () => ({ first: 0, last: -1 }),
      laggingConsumer: async () => undefined,
      referencedFiles: async () => new Set(),
    },
  };
}

/** A clock whose timers fire only when the test says, and that records what each one waits. */
class StepClock implements Clock {
  nowMs = Date.UTC(2026, 11, 4);
  readonly waits: number[] = [];
  #due: (() => void) | undefined;
  #onSet: (() => void) | undefined;
  now(): number {
    return this.nowMs;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.waits.push(ms);
    this.#due = fn;
    this.#onSet?.();
    return fn;
  }
  clearTimeout(handle: unknown): void {
    if (handle === this.#due) this.#due = undefined;
  }
  /** Fires the pending timer, moving time on by its wait. */
  fire(): void {
    const due = this.#due;
    this.#due = undefined;
    this.nowMs += this.waits.at(-1) ?? 0;
    due?.();
  }
  get pending(): boolean {
    return this.#due !== undefined;
  }
  /** Resolves once a timer is pending. */
  scheduled(): Promise<void> {
    if (this.pending) return Promise.resolve();
    return new Promise((resolve) => (this.#onSet = resolve));
  }
}

describe('RetentionService', () => {
  it('waits on its clock: the first delay, then the retry after a failure, then the interval, each times the scale', async () => {
    const clock = new StepClock();
    const reports: (PruneReport | Error)[] = [];
    let calls = 0;
    const store = emptyStore([]);
    const seqRange = store.retention.seqRange.bind(store.retention);
    store.retention.seqRange = async (table) => {
      calls += 1;
      if (calls === 1) throw new Error('database away');
      return seqRange(table);
    };
    const service = new RetentionService({
      store,
      retentionMs: 86_400_000,
      clock,
      timeScale: 2,
      schedule: { firstRunMs: 10, retryMs: 30, intervalMs: 1000 },
      onPrune: (report) => reports.push(report),
    });
    service.start();
    expect(clock.waits).toEqual([20]);
    expect(reports).toEqual([]);
    clock.fire();
    await clock.scheduled();
    expect(reports).toHaveLength(1);
    expect(reports[0]).toBeInstanceOf(Error);
    clock.fire();
    await clock.scheduled();
    expect(reports).toHaveLength(2);
    // The cutoff comes from the clock: now (two waits on) minus the retention.
    expect(reports[1]).toMatchObject({ cutoffMs: Date.UTC(2026, 11, 4) + 20 + 60 - 86_400_000 });
    await service.stop();
    expect(clock.waits).toEqual([20, 60, 2000]);
    expect(clock.pending).toBe(false);
  });

  it('prunes after the first delay and then every interval, both times the time scale, cutting at now − retention', async () => {
    const windows: PruneWindow[] = [];
    const reports: (PruneReport | Error)[] = [];
    let wake: () => void = () => undefined;
    const service = new RetentionService({
      store: emptyStore(windows),
      retentionMs: 30 * 86_400_000,
      now: () => Date.UTC(2026, 11, 4),
      timeScale: 0.001,
      schedule: { firstRunMs: 20, intervalMs: 50 },
      onPrune: (report) => {
        reports.push(report);
        wake();
      },
    });
    const startedMs = performance.now();
    service.start();
    await new Promise<void>((resolve) => (wake = () => reports.length >= 3 && resolve()));
    await service.stop();
    expect(performance.now() - startedMs).toBeLessThan(5_000);
    expect(reports).toHaveLength(3);
    expect(reports[0]).toMatchObject({ cutoffMs: Date.UTC(2026, 10, 4), dryRun: false });
    expect(new Set(windows.map((w) => w.table))).toEqual(
      new Set(['messages', 'transitions', 'events', 'rejections']),
    );
  });

  it('keeps going after a prune that failed', async () => {
    const reports: (PruneReport | Error)[] = [];
    let wake: () => void = () => undefined;
    let calls = 0;
    const store = emptyStore([]);
    const seqRange = store.retention.seqRange.bind(store.retention);
    store.retention.seqRange = async (table) => {
      calls += 1;
      if (calls === 1) throw new Error('database away');
      return seqRange(table);
    };
    const errors: string[] = [];
    const service = new RetentionService({
      store,
      retentionMs: 86_400_000,
      timeScale: 0.001,
      schedule: { firstRunMs: 10, retryMs: 10, intervalMs: 100_000 },
      logger: { info: () => undefined, warn: () => undefined, error: (_o, msg) => errors.push(msg ?? '') },
      onPrune: (report) => {
        reports.push(report);
        wake();
      },
    });
    service.start();
    await new Promise<void>((resolve) => (wake = () => reports.length >= 2 && resolve()));
    await service.stop();
    expect(reports[0]).toBeInstanceOf(Error);
    expect(reports[1]).not.toBeInstanceOf(Error);
    expect(errors).toEqual(['prune failed; trying again later']);
  });
});
