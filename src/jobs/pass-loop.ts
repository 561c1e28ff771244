/**
 * The wake-up loop the runner and the archive share: `wake()` asks for a pass soon; wakes while a pass
 * runs coalesce into one more pass after it; when no pass was asked for meanwhile, `afterIdle` arms the
 * owner's poll timer. Passes never overlap.
 */
export interface PassLoopOptions {
  /** One pass. A throw goes to `onError` and the loop goes on (the next wake or poll tries again). */
  pass: () => Promise<unknown>;
  onError: (error: unknown) => void;
  /** Whether passes may run (started and not stopping). */
  active: () => boolean;
  /** Called once the passes run out, while active: arm the poll timer. */
  afterIdle: () => void | Promise<void>;
  /**
   * While true, the next pass waits `busyDelayMs` (the runner defers to a busy ingest); each further
   * pass asked for while still busy waits twice as long as the one before, up to `busyDelayMaxMs`
   * (default `busyDelayMs`), and the first pass once not busy runs at once.
   */
  busy?: () => boolean;
  busyDelayMs?: number;
  busyDelayMaxMs?: number;
}

export class PassLoop {
  readonly #options: PassLoopOptions;
  readonly #busy: () => boolean;
  #scheduled = false;
  #looping = false;
  #again = false;
  /** The wait of the last pass deferred while busy; 0 once a pass ran without. */
  #busyDelay = 0;

  constructor(options: PassLoopOptions) {
    this.#options = options;
    this.#busy = options.busy ?? (() => false);
  }

  /** Look for work soon. */
  wake(): void {
    if (!this.#options.active()) return;
    if (this.#looping) {
      this.#again = true;
      return;
    }
    if (this.#scheduled) return;
    this.#scheduled = true;
    const run = () => {
      this.#scheduled = false;
      void this.#loop();
    };
    if (this.#busy()) {
      const first = this.#options.busyDelayMs ?? 0;
      const max = Math.max(first, this.#options.busyDelayMaxMs ?? first);
      this.#busyDelay = this.#busyDelay === 0 ? first : Math.min(max, this.#busyDelay * 2);
      setTimeout(run, this.#busyDelay);
    } else {
      this.#busyDelay = 0;
      setImmediate(run);
    }
  }

  async #loop(): Promise<void> {
    if (this.#looping) return;
    this.#looping = true;
    try {
      do {
        this.#again = false;
        await this.#options.pass().catch(this.#options.onError);
      } while (this.#again && this.#options.active() && !this.#busy());
    } finally {
      this.#looping = false;
    }
    if (this.#again && this.#options.active()) {
      // Busy: the next pass comes after a pause, with everything that arrived meanwhile.
      this.#again = false;
      this.wake();
      return;
    }
    if (this.#options.active()) await this.#options.afterIdle();
  }
}
