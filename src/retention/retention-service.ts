import type { ArchiveStorage } from '../archive/archive-storage.js';
import { SYSTEM_CLOCK, type Clock } from '../clock.js';
import type { RunnerLogger } from '../jobs/runner.js';
import type { Store } from '../store/types.js';
import { runPrune, type PruneOptions, type PruneReport } from './prune.js';

export interface RetentionSchedule {
  /** The first prune after start: soon, but not in the middle of start-up. */
  firstRunMs: number;
  intervalMs: number;
  /** After a prune that failed (the database was away). */
  retryMs: number;
}

const RETENTION_SCHEDULE: Readonly<RetentionSchedule> = Object.freeze({
  firstRunMs: 60_000,
  intervalMs: 86_400_000,
  retryMs: 3_600_000,
});

export interface RetentionServiceOptions {
  store: Pick<Store, 'retention'>;
  /** `--retention`: rows older than this go. */
  retentionMs: number;
  /** The archive's storage, when it is on: files no row names go too. */
  archive?: Pick<ArchiveStorage, 'list' | 'remove'>;
  logger?: RunnerLogger;
  /** `INLET_TIME_SCALE`: multiplies the schedule (never the retention itself). */
  timeScale?: number;
  schedule?: Partial<RetentionSchedule>;
  /** Times the schedule; its `now` is the prune's time unless `now` is given (tests). */
  clock?: Clock;
  now?: () => number;
  window?: PruneOptions['window'];
  /** Called after each prune (tests wait on it). */
  onPrune?: (report: PruneReport | Error) => void;
}

/** `serve --retention`: prunes once a day, the first time shortly after start (CONTRACT §13). */
export class RetentionService {
  #options: RetentionServiceOptions;
  #timer: unknown;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #stopped = false;

  readonly #clock: Clock;

  constructor(options: RetentionServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
  }

  start(): void {
    this.#schedule(this.#options.schedule?.firstRunMs ?? RETENTION_SCHEDULE.firstRunMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#running;
  }

  /** One prune now; its report, or the error it ended with. */
  async runOnce(): Promise<PruneReport | Error> {
    const { store, retentionMs, archive, logger, window } = this.#options;
    const now = this.#options.now ?? (() => this.#clock.now());
    const cutoffMs = now() - retentionMs;
    let outcome: PruneReport | Error;
    logger?.info({ olderThan: new Date(cutoffMs).toISOString() }, 'pruning what is older than the retention');
    try {
      outcome = await runPrune(store, {
        cutoffMs,
        signal: this.#abort.signal,
        now,
        ...(archive === undefined ? {} : { archive }),
        ...(window === undefined ? {} : { window }),
      });
      logger?.info(
        {
          olderThan: new Date(cutoffMs).toISOString(),
          deleted: outcome.deleted,
          durationMs: outcome.durationMs,
          longestWindowMs: outcome.longestWindowMs,
        },
        'pruned what is older than the retention',
      );
      if (outcome.laggingConsumer !== undefined) {
        logger?.warn(
          { consumer: outcome.laggingConsumer.name, position: outcome.laggingConsumer.position },
          'older transitions kept: this consumer has not fanned them out yet',
        );
      }
    } catch (error) {
      outcome = error as Error;
      if (!this.#abort.signal.aborted) {
        logger?.error({ err: outcome.message }, 'prune failed; trying again later');
      }
    }
    this.#options.onPrune?.(outcome);
    return outcome;
  }

  #schedule(delayMs: number): void {
    if (this.#stopped) return;
    const scale = this.#options.timeScale ?? 1;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.runOnce().then((outcome) => {
        this.#running = undefined;
        const schedule = { ...RETENTION_SCHEDULE, ...this.#options.schedule };
        this.#schedule(outcome instanceof Error ? schedule.retryMs : schedule.intervalMs);
      });
    }, delayMs * scale);
  }
}
