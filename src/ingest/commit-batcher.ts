import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { HOLDING_CLOCK, type Clock } from '../clock.js';
import type { InletMetrics } from '../metrics/metrics.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { CommitOutcome, IncomingEvent, IngestStore, StoreLifecycle } from '../store/types.js';

/** What the batcher needs of a store: its commit path and how many commits may run at once. */
export type CommitStore = Pick<IngestStore, 'commitEvents' | 'probeWrite' | 'commitPaths'> &
  Pick<StoreLifecycle, 'capabilities'>;

export type CommitResult = { ok: true; outcome: CommitOutcome } | { ok: false; reason: 'timeout' | 'error' };

/** How `/readyz` learns whether the store takes writes (see `CommitBatcher.ready`). */
export interface ReadinessOptions {
  /** A successful write younger than this answers for readiness; older, a probe write decides. */
  probeAfterMs?: number;
  /** The same after a failed write: shorter, so a mended store is seen soon, traffic or not. */
  probeAfterFailureMs?: number;
  /** Longest wait for a probe before answering "not ready" (the probe goes on, and its outcome counts). */
  probeTimeoutMs?: number;
  /** The clock, in milliseconds (tests); the batcher's clock when absent. */
  now?: () => number;
}

const DEFAULT_READINESS = Object.freeze({
  probeAfterMs: 5000,
  probeAfterFailureMs: 1000,
  probeTimeoutMs: 2000,
});

export interface CommitBatcherOptions {
  commitTimeoutMs: number;
  /** Largest group committed in one transaction. */
  maxBatch?: number;
  /**
   * First pause after a failed commit; doubles up to maxRetryDelayMs, and never beyond a quarter of
   * the commit timeout: a delivery that arrives as the store comes back is tried within its wait.
   */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  logger: Logger;
  metrics?: InletMetrics;
  readiness?: ReadinessOptions;
  /** Times the commit timeout, the retry after a failed commit and the readiness probe (tests). */
  clock?: Clock;
}

/**
 * Webhooks waiting, on average, at which ingest becomes crowded, and below which it stops being so
 * (hysteresis: at saturation the average dips below the first now and then, and each dip let the
 * runner take the loop back). Measured with the bench: 14–28 at saturation (wrk, 50 connections),
 * 5.5–8 at a steady 1,000 deliveries/s (11.7 in its cold first second).
 */
const CROWDED_PENDING = 16;
const UNCROWDED_PENDING = 10;
/** The average is over the last ~64 arrivals. */
const PENDING_AVERAGE_WEIGHT = 1 / 64;
/** No webhook for this long: not crowded, whatever the average says, and the average starts again. */
const CROWDED_WINDOW_MS = 200;

interface Pending {
  event: IncomingEvent;
  /** performance.now() at submit, for the commit wait metric. */
  submittedAt: number;
  settled: boolean;
  timer: unknown;
  resolve(result: CommitResult): void;
}

/**
 * Group commit: deliveries that arrive while a commit runs share the next transaction (one fsync),
 * and each caller waits for its own commit. A caller whose commit does not land within the commit
 * timeout gets `timeout` (answered 503, so Replicate retries); a store that cannot commit is retried
 * in the background, never by blocking the event loop.
 */
export class CommitBatcher {
  readonly #store: CommitStore;
  readonly #timeoutMs: number;
  readonly #maxBatch: number;
  readonly #retryDelayMs: number;
  readonly #maxRetryDelayMs: number;
  readonly #logger: Logger;
  readonly #metrics: InletMetrics | undefined;
  readonly #clock: Clock;
  #queue: Pending[] = [];
  #inFlight = 0;
  /** Objects of the batches committing now, when the store commits one batch per object at a time. */
  readonly #committingObjects = new Set<string>();
  #scheduled = false;
  #retryTimer: unknown;
  #failures = 0;
  /** The outcome of the last write, a commit or a readiness probe. */
  #lastWrite: { ok: boolean; atMs: number } | undefined;
  #probing: Promise<boolean> | undefined;
  readonly #readiness: Required<ReadinessOptions>;
  #idleWaiters: (() => void)[] = [];
  #transitionListeners = new Set<() => void>();
  /** `pending` as each webhook arrived, averaged (`PENDING_AVERAGE_WEIGHT`). */
  #pendingAverage = 0;
  /** performance.now() of the last arrival. */
  #lastSubmitAtMs = -Infinity;
  /** Whether the average crossed `CROWDED_PENDING` and has not fallen below `UNCROWDED_PENDING` since. */
  #crowded = false;

  constructor(store: CommitStore, options: CommitBatcherOptions) {
    this.#store = store;
    this.#timeoutMs = options.commitTimeoutMs;
    this.#maxBatch = options.maxBatch ?? 512;
    this.#retryDelayMs = options.retryDelayMs ?? 20;
    this.#maxRetryDelayMs = Math.min(options.maxRetryDelayMs ?? 1000, options.commitTimeoutMs / 4);
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#clock = options.clock ?? HOLDING_CLOCK;
    this.#readiness = { ...DEFAULT_READINESS, now: () => this.#clock.now(), ...options.readiness };
    this.#metrics?.watchCommitQueue(this);
    this.#metrics?.watchCommitPaths(() => store.commitPaths);
  }

  /** False while the last write (a commit or a readiness probe) failed. */
  get healthy(): boolean {
    return this.#lastWrite?.ok !== false;
  }

  /**
   * Whether the store takes writes now (`/readyz`): the outcome of the last commit while it is recent,
   * else of a probe write through the same path (one at a time, however many ask). Every kind of
   * failure counts, not only those classed "unavailable": a write that fails is a write that fails.
   */
  async ready(): Promise<boolean> {
    const { probeAfterMs, probeAfterFailureMs, probeTimeoutMs, now } = this.#readiness;
    const last = this.#lastWrite;
    if (last !== undefined && now() - last.atMs < (last.ok ? probeAfterMs : probeAfterFailureMs)) {
      return last.ok;
    }
    this.#probing ??= this.#probe().finally(() => (this.#probing = undefined));
    let timer: unknown;
    const tooSlow = new Promise<boolean>(
      (resolve) => (timer = this.#clock.setTimeout(() => resolve(false), probeTimeoutMs)),
    );
    try {
      return await Promise.race([this.#probing, tooSlow]);
    } finally {
      this.#clock.clearTimeout(timer);
    }
  }

  async #probe(): Promise<boolean> {
    try {
      await this.#store.probeWrite();
      if (this.#lastWrite?.ok === false)
        this.#logger.info('a probe write worked: the store takes writes again');
      this.#wrote(true);
      return true;
    } catch (error) {
      if (this.#lastWrite?.ok !== false) {
        this.#logger.warn({ err: (error as Error).message }, 'a probe write failed: not ready');
      }
      this.#wrote(false);
      return false;
    }
  }

  #wrote(ok: boolean): void {
    this.#lastWrite = { ok, atMs: this.#readiness.now() };
  }

  /**
   * Calls `listener` after each commit that applied a change (and so may have appended transitions):
   * the in-process runner's wake-up. Returns the unsubscribe function.
   */
  onTransitions(listener: () => void): () => void {
    this.#transitionListeners.add(listener);
    return () => this.#transitionListeners.delete(listener);
  }

  #committed(outcomes: readonly CommitOutcome[]): void {
    if (!outcomes.some((o) => o.applied)) return;
    for (const listener of this.#transitionListeners) {
      try {
        listener();
      } catch (error) {
        this.#logger.error({ err: error }, 'a transitions listener threw');
      }
    }
  }

  get pending(): number {
    return this.#queue.length + this.#inFlight;
  }

  /**
   * Whether ingest is crowded: on average over the last ~64 arrivals, `CROWDED_PENDING` or more
   * webhooks were waiting for their commit as one arrived (and it stays so until the average falls
   * below `UNCROWDED_PENDING`), and one arrived within `CROWDED_WINDOW_MS`. The in-process runner
   * defers to ingest while so. An average, not the count of the moment: at saturation the count dips
   * between one commit's answers and the next requests, and at a steady 1,000/s it spikes past the
   * threshold now and then (a checkpoint) while averaging ~6.
   */
  get crowded(): boolean {
    return this.#crowded && performance.now() - this.#lastSubmitAtMs <= CROWDED_WINDOW_MS;
  }

  /**
   * Whether no webhook waits for a commit at all (none queued, none committing) and ingest is not
   * crowded: a pass the runner deferred need not wait out its back-off. A commit's own listeners never
   * find it so (its batch still counts): in a flood the queue is empty at that moment too, the next
   * requests not parsed yet, and letting those wakes through cost the 2-destination bench 0.78× instead
   * of 0.95×. The runner's own wakes (an attempt finishing) and its poll timer are what find it calm.
   */
  get calm(): boolean {
    return this.pending === 0 && !this.crowded;
  }

  submit(event: IncomingEvent): Promise<CommitResult> {
    return new Promise<CommitResult>((resolve) => {
      const item: Pending = {
        event,
        submittedAt: performance.now(),
        settled: false,
        resolve,
        timer: this.#clock.setTimeout(
          () => this.#settle(item, { ok: false, reason: 'timeout' }),
          this.#timeoutMs,
        ),
      };
      this.#queue.push(item);
      // A pause ends crowding: the average starts again from the next arrivals.
      if (item.submittedAt - this.#lastSubmitAtMs > CROWDED_WINDOW_MS) {
        this.#pendingAverage = 0;
        this.#crowded = false;
      }
      this.#pendingAverage += (this.pending - this.#pendingAverage) * PENDING_AVERAGE_WEIGHT;
      this.#crowded = this.#pendingAverage >= (this.#crowded ? UNCROWDED_PENDING : CROWDED_PENDING);
      this.#lastSubmitAtMs = item.submittedAt;
      this.#schedule();
    });
  }

  /** Resolves once nothing is queued or committing (for shutdown). */
  drain(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #settle(item: Pending, result: CommitResult): void {
    if (item.settled) return;
    item.settled = true;
    this.#clock.clearTimeout(item.timer);
    if (this.#metrics !== undefined) {
      this.#metrics.commitWait((performance.now() - item.submittedAt) / 1000);
      if (!result.ok && result.reason === 'timeout') this.#metrics.commitTimeout();
      else if (result.ok && result.outcome.conflict) this.#metrics.conflict();
    }
    item.resolve(result);
  }

  #schedule(): void {
    if (this.#scheduled || this.#retryTimer !== undefined) return;
    const { maxConcurrentCommits, concurrentCommitBacklog = 1 } = this.#store.capabilities;
    if (this.#inFlight >= maxConcurrentCommits) return;
    if (this.#inFlight > 0 && this.#queue.length < concurrentCommitBacklog) return;
    this.#scheduled = true;
    // setImmediate lets every request already parsed in this turn join the batch.
    setImmediate(() => {
      this.#scheduled = false;
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    // Callers that already got their 503 are not committed: Replicate will retry them.
    this.#queue = this.#queue.filter((p) => !p.settled);
    if (this.#queue.length === 0) {
      this.#notifyIdle();
      return;
    }
    const batch = this.#takeBatch();
    // Every waiting delivery belongs to an object that is committing: its batch's end schedules again.
    if (batch.length === 0) return;
    const objects = this.#store.capabilities.oneCommitPerObject
      ? new Set(batch.map((p) => p.event.object.id))
      : undefined;
    objects?.forEach((id) => this.#committingObjects.add(id));
    this.#inFlight++;
    const startedAt = performance.now();
    try {
      const outcomes = await this.#store.commitEvents(batch.map((p) => p.event));
      this.#metrics?.commitBatch(batch.length, (performance.now() - startedAt) / 1000);
      this.#wrote(true);
      this.#recovered();
      batch.forEach((p, i) => {
        const outcome = outcomes[i];
        this.#settle(p, outcome ? { ok: true, outcome } : { ok: false, reason: 'error' });
      });
      this.#committed(outcomes);
    } catch (error) {
      this.#metrics?.commitBatch(batch.length, (performance.now() - startedAt) / 1000);
      this.#metrics?.storeError('commit');
      this.#wrote(false);
      if (error instanceof StoreUnavailableError) {
        this.#failed(error);
        this.#queue.unshift(...batch);
      } else if (batch.length > 1) {
        // An unexpected error: commit one by one so a single bad event cannot hold back the rest.
        this.#logger.error({ err: error, batch: batch.length }, 'commit failed; retrying events one by one');
        await this.#commitEach(batch);
      } else {
        this.#logger.error({ err: error, deliveryId: batch[0]?.event.key }, 'commit failed');
        batch.forEach((p) => this.#settle(p, { ok: false, reason: 'error' }));
      }
    } finally {
      this.#inFlight--;
      objects?.forEach((id) => this.#committingObjects.delete(id));
    }
    if (this.#queue.length > 0) this.#schedule();
    else this.#notifyIdle();
  }

  /**
   * The next batch, in arrival order: at most `maxBatch`, and, when the store commits one batch per
   * object at a time, none of the deliveries of an object that is committing (they wait in the queue,
   * in order, with every later one of that object).
   */
  #takeBatch(): Pending[] {
    if (!this.#store.capabilities.oneCommitPerObject || this.#committingObjects.size === 0) {
      return this.#queue.splice(0, this.#maxBatch);
    }
    const batch: Pending[] = [];
    const waiting: Pending[] = [];
    for (const p of this.#queue) {
      if (batch.length < this.#maxBatch && !this.#committingObjects.has(p.event.object.id)) batch.push(p);
      else waiting.push(p);
    }
    this.#queue = waiting;
    return batch;
  }

  async #commitEach(batch: Pending[]): Promise<void> {
    for (const p of batch) {
      if (p.settled) continue;
      try {
        const outcomes = await this.#store.commitEvents([p.event]);
        const [outcome] = outcomes;
        this.#wrote(true);
        this.#settle(p, outcome ? { ok: true, outcome } : { ok: false, reason: 'error' });
        this.#committed(outcomes);
      } catch (error) {
        this.#metrics?.storeError('commit');
        this.#wrote(false);
        this.#logger.error({ err: error, deliveryId: p.event.key }, 'commit failed');
        this.#settle(p, { ok: false, reason: 'error' });
      }
    }
  }

  #failed(error: StoreUnavailableError): void {
    this.#failures++;
    const delay = backoffDelay({
      baseMs: this.#retryDelayMs,
      maxMs: this.#maxRetryDelayMs,
      attempt: this.#failures,
    });
    if (this.#failures === 1 || this.#failures % 50 === 0) {
      this.#logger.warn(
        { err: error.message, attempt: this.#failures, retryInMs: delay },
        'store cannot commit; retrying',
      );
    }
    this.#retryTimer = this.#clock.setTimeout(() => {
      this.#retryTimer = undefined;
      this.#schedule();
    }, delay);
  }

  #recovered(): void {
    if (this.#failures > 0) this.#logger.info({ failedAttempts: this.#failures }, 'store commits again');
    this.#failures = 0;
  }

  #notifyIdle(): void {
    if (this.pending > 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    waiters.forEach((w) => w());
  }
}
