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
  /**
   * True when ingest has nothing waiting at all (default: not `busy`). A wake that finds it so cuts
   * short the wait of a pass deferred while busy. A stricter signal than "not busy": at saturation the
   * busy average dips now and then, and each dip released a whole pass into the flood.
   */
  calm?: () => boolean;
  busyDelayMs?: number;
  busyDelayMaxMs?: number;
}

export class PassLoop {
  readonly #options: PassLoopOptions;
  readonly #busy: () => boolean;
  readonly #calm: () => boolean;
  #scheduled = false;
  #looping = false;
  #again = false;
  /** The wait of the last pass deferred while busy; 0 once a pass ran without. */
  #busyDelay = 0;
  /** The timer of a pass deferred while busy and not yet run. */
  #deferred: ReturnType<typeof setTimeout> | undefined;

  constructor(options: PassLoopOptions) {
    this.#options = options;
    this.#busy = options.busy ?? (() => false);
    this.#calm = options.calm ?? (() => !this.#busy());
  }

  /** Look for work soon. */
  wake(): void {
    if (!this.#options.active()) return;
    if (this.#looping) {
      this.#again = true;
      return;
    }
    if (this.#scheduled) {
      // Deferred while ingest was busy, and now nothing waits: the pass runs now, not after its wait.
      if (this.#deferred !== undefined && this.#calm()) {
        clearTimeout(this.#deferred);
        this.#deferred = undefined;
        this.#busyDelay = 0;
        setImmediate(() => this.#run());
      }
      return;
    }
    this.#scheduled = true;
    if (this.#busy()) {
      const first = this.#options.busyDelayMs ?? 0;
      const max = Math.max(first, this.#options.busyDelayMaxMs ?? first);
      this.#busyDelay = this.#busyDelay === 0 ? first : Math.min(max, this.#busyDelay * 2);
      this.#deferred = setTimeout(() => {
        this.#deferred = undefined;
        this.#run();
      }, this.#busyDelay);
    } else {
      this.#busyDelay = 0;
      setImmediate(() => this.#run());
    }
  }

  #run(): void {
    this.#scheduled = false;
    void this.#loop();
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
