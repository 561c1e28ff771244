import type { Logger } from 'pino';
import type { InletMetrics } from '../metrics/metrics.js';
import type { NewRejection, RejectionLimits, Store } from '../store/types.js';

/**
 * Writes rejected requests to the bounded log in the background: a 4xx answer never waits for the
 * disk, and a store outage never turns a 4xx into something else.
 */
export class RejectionLog {
  readonly #store: Store;
  readonly #limits: RejectionLimits;
  readonly #logger: Logger;
  readonly #metrics: InletMetrics | undefined;
  #queue: NewRejection[] = [];
  #writing: Promise<void> | undefined;
  /** Kept in memory at most while the store is away; the oldest are dropped beyond it. */
  readonly #maxQueued = 1000;

  constructor(store: Store, limits: RejectionLimits, logger: Logger, metrics?: InletMetrics) {
    this.#store = store;
    this.#limits = limits;
    this.#logger = logger;
    this.#metrics = metrics;
  }

  record(rejection: NewRejection): void {
    if (this.#limits.maxRows === 0) return;
    this.#queue.push(rejection);
    if (this.#queue.length > this.#maxQueued) {
      this.#queue.shift();
      this.#metrics?.rejectionsDropped(1);
    }
    this.#writing ??= this.#write();
  }

  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
  }

  async #write(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const rows = this.#queue;
    this.#queue = [];
    try {
      await this.#store.recordRejections(rows, this.#limits);
      this.#metrics?.rejectionsRecorded(rows.length);
    } catch (error) {
      this.#metrics?.storeError('record_rejections');
      this.#metrics?.rejectionsDropped(rows.length);
      this.#logger.warn(
        { err: (error as Error).message, dropped: rows.length },
        'could not record rejections',
      );
    } finally {
      this.#writing = undefined;
      if (this.#queue.length > 0) this.#writing = this.#write();
    }
  }
}
