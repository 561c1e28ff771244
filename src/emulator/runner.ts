import { performance } from 'node:perf_hooks';
import type { ModelStep } from './models.js';
import type { EndStep } from './prediction.js';

/**
 * Plays a model's steps in real time: each `atMs` (times the time scale) after creation, in order.
 * The deadline (`Cancel-After`) and cancel requests end it early.
 */
export class ScriptRun {
  readonly #steps: readonly ModelStep[];
  readonly #timeScale: number;
  readonly #apply: (step: ModelStep | EndStep) => void;
  readonly #startedAt = performance.now();
  #next = 0;
  #timer: NodeJS.Timeout | undefined;
  #deadline: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(steps: readonly ModelStep[], timeScale: number, apply: (step: ModelStep | EndStep) => void) {
    this.#steps = [...steps].sort((a, b) => a.atMs - b.atMs);
    this.#timeScale = timeScale;
    this.#apply = apply;
  }

  /** `deadlineMs`: ms after creation (already scaled) when a still queued run aborts, a running one cancels. */
  start(deadlineMs: number | null, hasStarted: () => boolean): void {
    if (deadlineMs !== null) {
      this.#deadline = setTimeout(
        () => this.end(hasStarted() ? { kind: 'cancel' } : { kind: 'abort' }),
        deadlineMs,
      );
    }
    this.#schedule();
  }

  /** Ends the run with `step` (cancel or abort) unless it already ended. */
  end(step: EndStep): void {
    if (this.#stopped) return;
    this.stop();
    this.#apply(step);
  }

  /** Stops all timers without changing the prediction (the emulator is closing, or the run ended). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#deadline);
  }

  #schedule(): void {
    const step = this.#steps[this.#next];
    if (step === undefined || this.#stopped) {
      clearTimeout(this.#deadline);
      return;
    }
    const due = this.#startedAt + step.atMs * this.#timeScale - performance.now();
    this.#timer = setTimeout(
      () => {
        if (this.#stopped) return;
        this.#next += 1;
        this.#apply(step);
        this.#schedule();
      },
      Math.max(0, due),
    );
  }
}
