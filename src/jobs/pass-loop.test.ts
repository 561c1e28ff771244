import { describe, expect, it } from 'vitest';
import { PassLoop } from './pass-loop.js';

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
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
    let passes = 0;
    const loop = new PassLoop({
      pass: async () => {
        passes++;
      },
      onError: () => undefined,
      active: () => true,
      afterIdle: () => undefined,
      busy: () => true,
      busyDelayMs: 30,
    });
    const started = performance.now();
    loop.wake();
    await new Promise((r) => setImmediate(r));
    expect(passes).toBe(0);
    while (passes === 0) await new Promise((r) => setTimeout(r, 5));
    expect(performance.now() - started).toBeGreaterThanOrEqual(25);
  });
});
