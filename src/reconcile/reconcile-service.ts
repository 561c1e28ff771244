import type { CommitResult } from '../ingest/commit-batcher.js';
import { SYSTEM_CLOCK, type Clock } from '../clock.js';
import type { RunnerLogger } from '../jobs/runner.js';
import type { FetchedObject } from '../replicate/client.js';
import { isTerminalStatus } from '../replicate/status.js';
import type { ObjectKind } from '../replicate/types.js';
import type { TrackedObject, TrackSource } from '../store/recover-types.js';
import type { IncomingEvent, Store } from '../store/types.js';
import { pollDelayMs, RECONCILE_DEFAULTS } from './backoff.js';
import { pollEvent } from './poll-event.js';

/** Where a poll's answer goes: ingest's non-HTTP entry, so it commits and transitions like a webhook. */
export interface EventSink {
  ingestEvent(event: IncomingEvent): Promise<CommitResult>;
}

/** The one call reconcile makes to Replicate (`ReplicateClient` fits). */
export interface ObjectFetcher {
  getObject(kind: ObjectKind, id: string): Promise<FetchedObject>;
}

/** What one look at a tracked object came to (the `outcome` of a report and of the metric). */
export const POLL_OUTCOMES = [
  /** The answer changed the folded state. */
  'changed',
  /** The answer was already known (a duplicate) or changed nothing. */
  'unchanged',
  /** Replicate answered 404: given up. */
  'not_found',
  /** First seen more than a day ago: given up without a poll. */
  'expired',
  /** A delivery already made it terminal in Inlet: done without a poll. */
  'already_terminal',
  /** Deliveries are arriving again: no poll until they stop for the reconcile delay. */
  'waiting',
  /** Replicate or the store failed: polled again later. */
  'failed',
] as const;
export type PollOutcome = (typeof POLL_OUTCOMES)[number];

export interface PollReport {
  id: string;
  kind: ObjectKind;
  source: TrackSource;
  /** The status Inlet had before; null when it had never heard of the object. */
  from: string | null;
  /** The status Replicate answered; null without an answer. */
  to: string | null;
  outcome: PollOutcome;
  /** No more polls for this object. */
  done: boolean;
  /** A dry run: nothing was stored. */
  dryRun: boolean;
  error?: string;
}

export interface ReconcileMetrics {
  reconcilePoll(outcome: PollOutcome): void;
}

export interface ReconcileServiceOptions {
  store: Pick<Store, 'getPrediction' | 'listPredictions' | 'recover'>;
  fetcher: ObjectFetcher;
  sink: EventSink;
  /** `INLET_RECONCILE_AFTER_MS`. */
  afterMs?: number;
  /** `INLET_TIME_SCALE`: multiplies the poll backoff and the loop interval. */
  timeScale?: number;
  clock?: Clock;
  logger?: RunnerLogger;
  metrics?: ReconcileMetrics;
  intervalMs?: number;
  firstPollMs?: number;
  maxPollMs?: number;
  maxAgeMs?: number;
  concurrency?: number;
  /** Called after each object is handled (tests wait on it). */
  onPoll?: (report: PollReport) => void;
}

export interface PassOptions {
  /** Fetch and report, store nothing. */
  dryRun?: boolean;
  /** Poll every tracked object now, due or not (`inlet reconcile`). */
  all?: boolean;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * Never lose a result (CONTRACT §11): Replicate retries only the terminal webhook, for about a
 * minute, so an object whose deliveries stopped before it ended is fetched from the API until it ends.
 * Each pass tracks the objects quiet for `afterMs`, then polls the due ones with backoff; the answer goes
 * through ingest like a delivery (`scheme: "poll"`). Progress lives in the store, so a restart resumes.
 */
export class ReconcileService {
  readonly name = 'reconcile';
  readonly #options: ReconcileServiceOptions;
  readonly #clock: Clock;
  readonly #afterMs: number;
  readonly #timeScale: number;
  readonly #maxAgeMs: number;
  readonly #bounds: { firstPollMs: number; maxPollMs: number };
  #running = false;
  #stopping = false;
  #timer: unknown;
  #pass: Promise<unknown> = Promise.resolve();

  constructor(options: ReconcileServiceOptions) {
    this.#options = options;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#afterMs = options.afterMs ?? RECONCILE_DEFAULTS.afterMs;
    this.#timeScale = options.timeScale ?? 1;
    this.#maxAgeMs = options.maxAgeMs ?? RECONCILE_DEFAULTS.maxAgeMs;
    this.#bounds = {
      firstPollMs: options.firstPollMs ?? RECONCILE_DEFAULTS.firstPollMs,
      maxPollMs: options.maxPollMs ?? RECONCILE_DEFAULTS.maxPollMs,
    };
  }

  /** The wait before the first poll of an object `inlet predict` just created. */
  get firstPollDelayMs(): number {
    return pollDelayMs(0, this.#timeScale, this.#bounds);
  }

  async start(): Promise<void> {
    this.#running = true;
    this.#options.logger?.info(
      { afterMs: this.#afterMs, timeScale: this.#timeScale },
      `reconcile on: objects with no delivery for ${this.#afterMs} ms are fetched from Replicate until they end`,
    );
    this.#schedule(0);
    return Promise.resolve();
  }

  /** Stops scheduling passes and waits for the one running (its polls finish or fail). */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#pass.catch(() => undefined);
  }

  #schedule(ms: number): void {
    if (!this.#running) return;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      void this.#loop();
    }, ms);
  }

  async #loop(): Promise<void> {
    let full = false;
    try {
      const reports = await this.runOnce();
      full = reports.length >= RECONCILE_DEFAULTS.batch;
    } catch (error) {
      this.#options.logger?.warn({ err: describe(error) }, 'reconcile pass failed; trying again shortly');
    }
    const interval = (this.#options.intervalMs ?? RECONCILE_DEFAULTS.intervalMs) * this.#timeScale;
    this.#schedule(full ? 0 : Math.max(1, Math.round(interval)));
  }

  /** One pass: track stale objects, then poll the due ones. Passes never overlap. */
  runOnce(options: PassOptions = {}): Promise<PollReport[]> {
    const next = this.#pass.then(
      () => this.#runPass(options),
      () => this.#runPass(options),
    );
    this.#pass = next.catch(() => undefined);
    return next;
  }

  async #runPass(options: PassOptions): Promise<PollReport[]> {
    const { store } = this.#options;
    const now = this.#clock.now();
    const quietSinceMs = now - this.#afterMs;
    const firstSeenAfterMs = now - this.#maxAgeMs;
    let work: TrackedObject[];
    if (options.dryRun === true) {
      work = [
        ...(await store.recover.listDuePolls(options.all === true ? Number.MAX_SAFE_INTEGER : now, 1000)),
        ...(await this.#staleNotTracked(quietSinceMs, firstSeenAfterMs)),
      ];
    } else {
      let tracked: number;
      do {
        tracked = await store.recover.trackStale({
          quietSinceMs,
          firstSeenAfterMs,
          nowMs: now,
          limit: RECONCILE_DEFAULTS.batch,
        });
        if (tracked > 0) this.#options.logger?.info({ count: tracked }, 'reconcile: tracking quiet objects');
      } while (tracked >= RECONCILE_DEFAULTS.batch && !this.#stopping);
      work = await store.recover.listDuePolls(
        options.all === true ? Number.MAX_SAFE_INTEGER : now,
        options.all === true ? 1000 : RECONCILE_DEFAULTS.batch,
      );
    }
    const reports: PollReport[] = [];
    const queue = [...work];
    const worker = async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) {
        if (this.#stopping) return;
        const report = await this.#handle(next, options);
        reports.push(report);
        this.#options.metrics?.reconcilePoll(report.outcome);
        this.#options.onPoll?.(report);
      }
    };
    const concurrency = this.#options.concurrency ?? RECONCILE_DEFAULTS.concurrency;
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    return reports;
  }

  /** What `trackStale` would track, read without writing (for a dry run). */
  async #staleNotTracked(quietSinceMs: number, firstSeenAfterMs: number): Promise<TrackedObject[]> {
    const { store } = this.#options;
    const page = await store.listPredictions({
      statuses: ['starting', 'processing'],
      untilMs: quietSinceMs,
      limit: 1000,
    });
    const found: TrackedObject[] = [];
    for (const o of page.items) {
      if (o.firstReceivedAtMs <= firstSeenAfterMs) continue;
      if ((await store.recover.getTracked(o.id)) !== undefined) continue;
      found.push({
        id: o.id,
        kind: o.kind,
        source: 'stale',
        createdAtMs: o.firstReceivedAtMs,
        lastPolledAtMs: null,
        nextPollAtMs: this.#clock.now(),
        attempts: 0,
        done: false,
      });
    }
    return found;
  }

  async #handle(tracked: TrackedObject, options: PassOptions): Promise<PollReport> {
    const { store, fetcher, sink, logger } = this.#options;
    const dryRun = options.dryRun === true;
    const now = this.#clock.now();
    const record = await store.getPrediction(tracked.id);
    const from = record?.status ?? null;
    const base = { id: tracked.id, kind: tracked.kind, source: tracked.source, from, dryRun };
    const finish = async (
      report: Omit<PollReport, keyof typeof base>,
      update: { polledAtMs: number | null; nextPollAtMs: number; attempted: boolean },
    ): Promise<PollReport> => {
      if (!dryRun) await store.recover.updatePoll(tracked.id, { ...update, done: report.done });
      return { ...base, ...report };
    };

    if (record !== undefined && isTerminalStatus(record.status)) {
      return finish(
        { to: null, outcome: 'already_terminal', done: true },
        { polledAtMs: null, nextPollAtMs: now, attempted: false },
      );
    }
    if (now - tracked.createdAtMs > this.#maxAgeMs) {
      logger?.info(
        { predictionId: tracked.id, status: from },
        `reconcile: giving up on ${tracked.id}, first seen more than a day ago`,
      );
      return finish(
        { to: null, outcome: 'expired', done: true },
        { polledAtMs: null, nextPollAtMs: now, attempted: false },
      );
    }
    // A delivery newer than the last poll, and recent: webhooks are flowing, wait for them.
    const since = tracked.lastPolledAtMs ?? tracked.createdAtMs;
    if (
      options.all !== true &&
      record !== undefined &&
      record.lastReceivedAtMs > since &&
      record.lastReceivedAtMs > now - this.#afterMs
    ) {
      return finish(
        { to: null, outcome: 'waiting', done: false },
        { polledAtMs: null, nextPollAtMs: record.lastReceivedAtMs + this.#afterMs, attempted: false },
      );
    }

    const polls = tracked.attempts + 1;
    const retryAt = () => this.#clock.now() + pollDelayMs(polls, this.#timeScale, this.#bounds);
    let fetched: FetchedObject;
    try {
      fetched = await fetcher.getObject(tracked.kind, tracked.id);
    } catch (error) {
      logger?.warn(
        { predictionId: tracked.id, err: describe(error) },
        `reconcile: cannot fetch ${tracked.id} from Replicate; trying again later`,
      );
      return finish(
        { to: null, outcome: 'failed', done: false, error: describe(error) },
        { polledAtMs: now, nextPollAtMs: retryAt(), attempted: true },
      );
    }
    if (!fetched.found) {
      logger?.info(
        { predictionId: tracked.id, status: fetched.status },
        `reconcile: Replicate does not know ${tracked.id} (${fetched.status}); no more polls`,
      );
      return finish(
        { to: null, outcome: 'not_found', done: true },
        { polledAtMs: now, nextPollAtMs: now, attempted: true },
      );
    }
    const to = fetched.object.status;
    const terminal = isTerminalStatus(to);
    if (dryRun) {
      const same =
        record !== undefined &&
        to === from &&
        JSON.stringify([record.object.output, record.object.logs]) ===
          JSON.stringify([fetched.object.output, fetched.object.logs]);
      return { ...base, to, outcome: same ? 'unchanged' : 'changed', done: terminal };
    }
    const result = await sink.ingestEvent(pollEvent(fetched.object, fetched.body, now));
    if (!result.ok) {
      return finish(
        { to, outcome: 'failed', done: false, error: `the store could not commit (${result.reason})` },
        { polledAtMs: now, nextPollAtMs: retryAt(), attempted: true },
      );
    }
    const changed = !result.outcome.duplicate && result.outcome.applied;
    return finish(
      { to, outcome: changed ? 'changed' : 'unchanged', done: terminal },
      { polledAtMs: now, nextPollAtMs: retryAt(), attempted: true },
    );
  }
}
