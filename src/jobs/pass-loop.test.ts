import { describe, expect, it, vi } from 'vitest';
import { PassLoop, type PassLoopOptions } from './pass-loop.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** A loop whose passes only count themselves, with the busy options given. */
function countingLoop(options: Pick<PassLoopOptions, 'busy' | 'calm' | 'busyDelayMs' | 'busyDelayMaxMs'>) {
  let passes = 0;
  const loop = new PassLoop({
    pass: async () => {
      passes++;
    },
    onError: () => undefined,
    active: () => true,
    afterIdle: () => undefined,
    ...options,
  });
  return { loop, passes: () => passes };
}

describe('PassLoop', () => {
  it('coalesces wakes during a pass into one more pass, then calls afterIdle once', async () => {
    let passes = 0;
    let gate = deferred();
    const idle = deferred();
    let idles = 0;
    const loop = new PassLoop({
      pass: async () => {
        passes++;
        await gate.promise;
      },
      onError: () => undefined,
      active: () => true,
      afterIdle: () => {
        idles++;
        idle.resolve();
      },
    });
    loop.wake();
    loop.wake(); // already scheduled: no second loop
    await new Promise((r) => setImmediate(r));
    expect(passes).toBe(1);
    loop.wake();
    loop.wake();
    loop.wake();
    const first = gate;
    gate = deferred();
    first.resolve();
    await new Promise((r) => setImmediate(r));
    expect(passes).toBe(2);
    gate.resolve();
    await idle.promise;
    expect(passes).toBe(2);
    expect(idles).toBe(1);
  });

  it('keeps going after a failed pass, and does nothing while inactive', async () => {
    const errors: unknown[] = [];
    let active = false;
    const idle = deferred();
    const loop = new PassLoop({
      pass: () => Promise.reject(new Error('boom')),
      onError: (error) => errors.push(error),
      active: () => active,
      afterIdle: () => idle.resolve(),
    });
    loop.wake();
    await new Promise((r) => setImmediate(r));
    expect(errors).toHaveLength(0);
    active = true;
    loop.wake();
    await idle.promise;
    expect(errors).toHaveLength(1);
  });

  it('while busy, the next pass waits busyDelayMs instead of running at once', async () => {
    const { loop, passes } = countingLoop({ busy: () => true, busyDelayMs: 30 });
    const started = performance.now();
    loop.wake();
    await new Promise((r) => setImmediate(r));
    expect(passes()).toBe(0);
    while (passes() === 0) await new Promise((r) => setTimeout(r, 5));
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });

  it('while ingest stays busy, each further pass waits twice as long, up to busyDelayMaxMs; not busy resets it', async () => {
    const waits: number[] = [];
    const realSetTimeout = globalThis.setTimeout;
    let busy = true;
    const { loop, passes } = countingLoop({ busy: () => busy, busyDelayMs: 1, busyDelayMaxMs: 4 });
    const spy = vi.spyOn(globalThis, 'setTimeout').mockImplementation(((fn: () => void, ms: number) => {
      waits.push(ms);
      return realSetTimeout(fn, 0);
    }) as typeof setTimeout);
    try {
      for (let i = 1; i <= 5; i++) {
        loop.wake();
        while (passes() < i) await new Promise((r) => setImmediate(r));
      }
      busy = false;
      loop.wake();
      while (passes() < 6) await new Promise((r) => setImmediate(r));
      busy = true;
      loop.wake();
      while (passes() < 7) await new Promise((r) => setImmediate(r));
    } finally {
      spy.mockRestore();
    }
    expect(waits).toEqual([1, 2, 4, 4, 4, 1]);
  });

  it('runs a pass deferred while busy at once when a wake finds ingest calm (nothing waiting), not merely not busy', async () => {
    let busy = true;
    let calm = false;
    // The wait is far longer than the test may take: only a wake can run the pass.
    const { loop, passes } = countingLoop({ busy: () => busy, calm: () => calm, busyDelayMs: 600_000 });
    /** Up to 20 turns of the event loop, fewer once `count` passes ran. */
    const turns = async (count: number) => {
      for (let i = 0; i < 20 && passes() < count; i++) await new Promise((r) => setImmediate(r));
    };
    loop.wake();
    await turns(1);
    // No longer busy, but webhooks still waiting (a dip of the average in a flood): the pass waits.
    busy = false;
    loop.wake();
    await turns(1);
    expect(passes()).toBe(0);
    calm = true;
    loop.wake();
    await turns(1);
    expect(passes()).toBe(1);
  });
});
