import { SYSTEM_CLOCK, type Clock } from '../clock.js';
import type { RunnerLogger } from '../jobs/runner.js';
import { PassLoop } from '../jobs/pass-loop.js';
import { withJitter } from '../backoff.js';
import type { ArchiveFileRecord, ArchiveResult } from '../store/recover-types.js';
import type { Store } from '../store/types.js';
import type { ArchiveStorage } from './archive-storage.js';
import { FileTooLargeError, openDownload } from './download.js';
import type { HostAllowList } from './host-allow-list.js';
import { findOutputUrls, MAX_URLS_PER_OUTPUT } from './output-urls.js';

export interface ArchiveServiceOptions {
  store: Pick<Store, 'getPrediction' | 'recover'>;
  storage: ArchiveStorage;
  allowList: HostAllowList;
  /** `INLET_ARCHIVE_MAX_BYTES`. */
  maxBytes: number;
  /** `REPLICATE_API_TOKEN`. */
  token?: string | undefined;
  logger?: RunnerLogger;
  clock?: Clock;
  /** `INLET_TIME_SCALE`: multiplies the retry delays. */
  timeScale?: number;
  /** Downloads at once. */
  concurrency?: number;
  /** Look for work at least this often (other instances' commits, due retries). */
  pollIntervalMs?: number;
  /** Waits before the 2nd, 3rd… try of a failing download; after the last, it is given up. */
  retryDelaysMs?: readonly number[];
  /** Succeeded objects received longer ago than this when the archive first sees them are left alone. */
  lookbackMs?: number;
  /** A source that sends nothing for this long fails the attempt. */
  idleTimeoutMs?: number;
  random?: () => number;
  fetch?: typeof fetch;
  /** Called after each attempt's result is recorded (tests wait on it). */
  onResult?: (file: ArchiveFileRecord, result: ArchiveResult) => void;
}

const ARCHIVE_DEFAULTS = Object.freeze({
  concurrency: 4,
  pollIntervalMs: 5000,
  // Replicate removes API outputs after an hour: try often at first, then keep at it through outages.
  retryDelaysMs: Object.freeze([5_000, 15_000, 60_000, 300_000, 900_000, 1_800_000, 3_600_000]),
  lookbackMs: 24 * 60 * 60 * 1000,
  idleTimeoutMs: 60_000,
  scanBatch: 100,
});

/** ±20%, as the runner's retries. */
const JITTER = 0.2;
const STOPPING = 'the archive is stopping';

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Copies the files of succeeded outputs into the archive (CONTRACT §11): scans each newly succeeded
 * object once for URLs, then downloads the due ones a few at a time, retrying failures on a schedule.
 * Runs inside `serve`; woken after commits and on a timer. Progress lives in the store, so a restart
 * picks up where a killed process stopped.
 */
export class ArchiveService {
  readonly name = 'archive';
  readonly #options: ArchiveServiceOptions;
  readonly #clock: Clock;
  readonly #concurrency: number;
  readonly #pollIntervalMs: number;
  readonly #retryDelaysMs: readonly number[];
  readonly #timeScale: number;
  readonly #random: () => number;
  readonly #inFlight = new Map<string, { controller: AbortController; done: Promise<void> }>();
  #running = false;
  #stopping = false;
  #passChain: Promise<unknown> = Promise.resolve();
  readonly #loop: PassLoop;
  #timer: unknown;

  constructor(options: ArchiveServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#concurrency = options.concurrency ?? ARCHIVE_DEFAULTS.concurrency;
    this.#pollIntervalMs = options.pollIntervalMs ?? ARCHIVE_DEFAULTS.pollIntervalMs;
    this.#retryDelaysMs = options.retryDelaysMs ?? ARCHIVE_DEFAULTS.retryDelaysMs;
    this.#timeScale = options.timeScale ?? 1;
    this.#random = options.random ?? Math.random;
    this.#loop = new PassLoop({
      pass: () => this.#serial(() => this.#pass()),
      onError: (error) =>
        this.#options.logger?.warn({ err: describe(error) }, 'archive pass failed; trying again shortly'),
      active: () => this.#running && !this.#stopping,
      afterIdle: () => this.#armTimer(),
    });
  }

  get storage(): ArchiveStorage {
    return this.#options.storage;
  }

  async start(): Promise<void> {
    await this.#options.storage.cleanUp?.().catch((error: unknown) => {
      this.#options.logger?.warn({ err: describe(error) }, 'archive: cannot clean up temporary files');
    });
    this.#running = true;
    this.#options.logger?.info({ archive: this.#options.storage.location }, 'archiving output files');
    this.wake();
  }

  /** New commits, a finished download, the timer: look for work soon. */
  wake(): void {
    this.#loop.wake();
  }

  /** One scan and dispatch, then waits for every download in flight. Answers how many it started. */
  async runOnce(): Promise<number> {
    const started = await this.#serial(() => this.#pass());
    await this.#allInFlight();
    return started;
  }

  /** Stops starting downloads; aborts those in flight (their rows stay due for the next start). */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    await this.#passChain.catch(() => undefined);
    for (const flight of this.#inFlight.values()) flight.controller.abort(STOPPING);
    await this.#allInFlight();
    await this.#options.storage.close?.().catch(() => undefined);
  }

  async #allInFlight(): Promise<void> {
    while (this.#inFlight.size > 0) {
      await Promise.all([...this.#inFlight.values()].map((f) => f.done));
    }
  }

  #armTimer(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.wake();
    }, this.#pollIntervalMs);
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#passChain.then(work, work);
    this.#passChain = next.catch(() => undefined);
    return next;
  }

  async #pass(): Promise<number> {
    await this.#scan();
    return this.#dispatch();
  }

  /** Records the URLs of every succeeded object not scanned yet (each object once). */
  async #scan(): Promise<void> {
    const { store, logger } = this.#options;
    const lookback = this.#options.lookbackMs ?? ARCHIVE_DEFAULTS.lookbackMs;
    for (;;) {
      if (this.#stopping) return;
      const now = this.#clock.now();
      const candidates = await store.recover.listArchiveCandidates(
        now - lookback,
        ARCHIVE_DEFAULTS.scanBatch,
      );
      for (const candidate of candidates) {
        const record = await store.getPrediction(candidate.id);
        const urls = findOutputUrls(record?.object.output);
        if (urls.length === MAX_URLS_PER_OUTPUT) {
          logger?.warn(
            { predictionId: candidate.id, limit: MAX_URLS_PER_OUTPUT },
            'archive: output has more URLs than the limit; the rest are not archived',
          );
        }
        await store.recover.addArchiveFiles(
          candidate.id,
          urls.map((u) => ({
            predictionId: candidate.id,
            path: u.path,
            sourceUrl: u.url,
            nextAttemptAtMs: now,
          })),
          now,
        );
      }
      if (candidates.length < ARCHIVE_DEFAULTS.scanBatch) return;
    }
  }

  async #dispatch(): Promise<number> {
    const free = this.#concurrency - this.#inFlight.size;
    if (free <= 0 || this.#stopping) return 0;
    const due = await this.#options.store.recover.listDueArchiveFiles(
      this.#clock.now(),
      free + this.#inFlight.size,
    );
    let started = 0;
    for (const file of due) {
      const key = `${file.predictionId}\u0000${file.path}`;
      if (started >= free || this.#inFlight.has(key)) continue;
      const controller = new AbortController();
      const done = this.#attempt(file, controller)
        .catch((error: unknown) => {
          this.#options.logger?.error(
            { err: describe(error), predictionId: file.predictionId },
            'archive attempt failed',
          );
        })
        .finally(() => {
          this.#inFlight.delete(key);
          this.wake();
        });
      this.#inFlight.set(key, { controller, done });
      started++;
    }
    return started;
  }

  async #attempt(file: ArchiveFileRecord, controller: AbortController): Promise<void> {
    const { storage, allowList, logger } = this.#options;
    const log = { predictionId: file.predictionId, path: file.path };
    let result: ArchiveResult;
    try {
      const download = await openDownload(file.sourceUrl, {
        allowList,
        token: this.#options.token,
        maxBytes: this.#options.maxBytes,
        signal: controller.signal,
        idleTimeoutMs: this.#options.idleTimeoutMs ?? ARCHIVE_DEFAULTS.idleTimeoutMs,
        ...(this.#options.fetch === undefined ? {} : { fetch: this.#options.fetch }),
      });
      if (controller.signal.aborted) {
        if (download.ok) download.body.destroy();
        return;
      }
      if (download.ok) {
        const stored = await storage.put(download.body, {
          contentType: download.contentType,
          signal: controller.signal,
        });
        result = {
          ok: true,
          sha256: stored.sha256,
          size: stored.size,
          contentType: download.contentType,
          archivedAtMs: this.#clock.now(),
        };
      } else {
        result = this.#failure(file, download.error, download.retry);
      }
    } catch (error) {
      // Stopping: the row stays due and the next start downloads the file again.
      if (controller.signal.aborted && controller.signal.reason === STOPPING) return;
      const tooLarge = error instanceof FileTooLargeError;
      result = this.#failure(file, tooLarge ? `not archived: ${error.message}` : describe(error), !tooLarge);
    }
    if (result.ok) logger?.info({ ...log, sha256: result.sha256, size: result.size }, 'output file archived');
    else
      logger?.warn(
        { ...log, error: result.error, nextAttemptAtMs: result.nextAttemptAtMs },
        'output file not archived',
      );
    await this.#options.store.recover.recordArchiveResult(file.predictionId, file.path, result);
    this.#options.onResult?.(file, result);
  }

  #failure(file: ArchiveFileRecord, error: string, retry: boolean): ArchiveResult {
    const attempts = file.attempts + 1;
    const base = retry ? this.#retryDelaysMs[file.attempts] : undefined;
    if (base === undefined) {
      return {
        ok: false,
        error: retry ? `${error} (gave up after ${attempts} attempts)` : error,
        nextAttemptAtMs: null,
      };
    }
    const delay = withJitter(base, JITTER, this.#random) * this.#timeScale;
    return { ok: false, error, nextAttemptAtMs: this.#clock.now() + Math.round(delay) };
  }
}
