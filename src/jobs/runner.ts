import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { backoffDelay, withJitter } from '../backoff.js';
import { SYSTEM_CLOCK, type Clock } from '../clock.js';
import type {
  AttemptOutcome,
  AttemptVerdict,
  ClaimRequest,
  ConsumerRecord,
  JobStore,
  MessageRecord,
} from '../store/job-types.js';
import type { TransitionLog, TransitionRecord } from '../store/transition-types.js';
import { transitionDataView } from '../views.js';
import { configHash, consumerWants, newMessageFor, type ConsumerDefinition } from './consumer.js';
import type { AttemptResult, Deliverer, OutboundMessage } from './deliverer.js';
import { PassLoop } from './pass-loop.js';

// The clock moved to src/clock.ts (shared with ingest, the store and retention); kept here for importers.

/** The few logger methods the runner uses (a pino logger fits). */
export interface RunnerLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** What the runner reports (InletMetrics implements it). */
export interface RunnerMetrics {
  /** One attempt, by consumer and what became of the message. */
  messageAttempt(consumer: string, outcome: AttemptVerdict['state'], seconds: number): void;
  /** Consumers' counts and lag are read at scrape time. */
  watchConsumers(
    read: () => Promise<{ name: string; pending: number; dead: number; lagSeconds: number }[]>,
  ): void;
}

export interface RunnerOptions {
  jobs: JobStore;
  log: TransitionLog;
  logger?: RunnerLogger;
  metrics?: RunnerMetrics;
  clock?: Clock;
  /** Multiplies retry delays and `Retry-After` (`INLET_TIME_SCALE`; tests run schedules fast). */
  timeScale?: number;
  /** Names this runner's leases; unique per process by default. */
  owner?: string;
  /** Look for work at least this often (other instances, the CLI, due retries). */
  pollIntervalMs?: number;
  /** Transitions read per fan-out step. */
  fanOutBatch?: number;
  /** How long `stop()` lets attempts in flight finish before aborting them. */
  stopGraceMs?: number;
  /** Jitter source in [0, 1). */
  random?: () => number;
  /**
   * True while ingest is crowded (serve's batcher: many webhooks waiting for their commit, on
   * average). The runner then coalesces wake-ups into at most one pass per `busyPassIntervalMs`, twice
   * as long for each further pass while ingest stays busy (up to `busyPassMaxIntervalMs`), and a busy
   * pass fans out only enough transitions to keep the consumer's slots filled (the rest wait in the
   * log, which is as durable as a message): answering Replicate keeps the CPU and the database first;
   * the runner catches up as soon as ingest is idle.
   */
  busy?: () => boolean;
  /** True when ingest has nothing waiting: a pass deferred while busy then runs at once (`PassLoopOptions.calm`). */
  calm?: () => boolean;
  busyPassIntervalMs?: number;
  busyPassMaxIntervalMs?: number;
}

const RUNNER_DEFAULTS = Object.freeze({
  pollIntervalMs: 1000,
  fanOutBatch: 500,
  stopGraceMs: 5000,
  /** A lease outlasts the attempt's timeout by this much, then another runner may take it over. */
  leaseMarginMs: 30_000,
  /**
   * Transitions kept from fan-out for their attempts, bounded by their bodies' bytes (a body can be
   * large) and by count. A backlog of a few thousand small messages stays in memory, so catching up
   * does not read each transition twice.
   */
  transitionCacheBytes: 16 * 1024 * 1024,
  transitionCacheSize: 8192,
  busyPassIntervalMs: 10,
  busyPassMaxIntervalMs: 1000,
});

/** ±20% (CONTRACT §9). */
const JITTER = 0.2;

/**
 * What an attempt's result does to its message: delivered, retried after the next delay of the
 * schedule (or a longer `Retry-After`), dead after the last, or the consumer disabled (410).
 */
export function verdictFor(
  result: AttemptResult,
  context: {
    retryDelaysMs: readonly number[];
    /** Attempts of this round including this one. */
    roundAttempts: number;
    nowMs: number;
    timeScale: number;
    random: () => number;
  },
): AttemptVerdict {
  switch (result.outcome) {
    case 'delivered':
      return { state: 'delivered' };
    case 'disable':
      return { state: 'disable', reason: result.reason };
    case 'retry': {
      const base = context.retryDelaysMs[context.roundAttempts - 1];
      if (base === undefined) return { state: 'dead' };
      const jittered = withJitter(base, JITTER, context.random);
      const asked = result.retryAfterMs ?? 0;
      const delay = Math.max(jittered, asked) * context.timeScale;
      return { state: 'retry', nextAttemptAtMs: context.nowMs + Math.round(delay) };
    }
  }
}

interface InFlight {
  readonly controller: AbortController;
  readonly done: Promise<void>;
}

interface Active {
  readonly definition: ConsumerDefinition;
  record: ConsumerRecord | undefined;
  deliverer: Deliverer | undefined;
  readonly inFlight: Map<string, InFlight>;
  /**
   * 410 verdicts not yet recorded. The stored row still says enabled until the flush of outcomes
   * writes the disable, so while this is above 0 the consumer is disabled whatever is read back.
   */
  disabling: number;
}

/** Within one pass: the log read after a position (and limit), shared by the consumers standing there. */
type PassReads = Map<string, Promise<TransitionRecord[]>>;

const STOPPING = 'the runner is stopping';

/**
 * Moves transitions to consumers: fans each consumer's new transitions out into messages, claims due
 * messages under leases, makes one attempt each through the consumer's deliverer, and records the
 * outcome. Runs inside `serve` and alone as `inlet worker`; several runners may share one PostgreSQL.
 */
export class Runner {
  readonly owner: string;
  readonly #jobs: JobStore;
  readonly #log: TransitionLog;
  readonly #logger: RunnerLogger | undefined;
  readonly #clock: Clock;
  readonly #timeScale: number;
  readonly #pollIntervalMs: number;
  readonly #fanOutBatch: number;
  readonly #stopGraceMs: number;
  readonly #random: () => number;
  readonly #busy: () => boolean;
  readonly #busyPassIntervalMs: number;
  readonly #consumers = new Map<string, Active>();
  /** Transitions read by fan-out, so an attempt rarely reads the log again. */
  readonly #transitions = new Map<string, TransitionRecord>();
  #transitionBytes = 0;
  #running = false;
  #stopping = false;
  #passChain: Promise<unknown> = Promise.resolve();
  readonly #loop: PassLoop;
  #timer: unknown;
  #completions: { outcome: AttemptOutcome; resolve: () => void }[] = [];
  #flushScheduled = false;
  #flushing: Promise<void> = Promise.resolve();

  constructor(options: RunnerOptions) {
    this.#jobs = options.jobs;
    this.#log = options.log;
    this.#logger = options.logger;
    this.#clock = options.clock ?? SYSTEM_CLOCK;
    this.#timeScale = options.timeScale ?? 1;
    this.#pollIntervalMs = options.pollIntervalMs ?? RUNNER_DEFAULTS.pollIntervalMs;
    this.#fanOutBatch = options.fanOutBatch ?? RUNNER_DEFAULTS.fanOutBatch;
    this.#stopGraceMs = options.stopGraceMs ?? RUNNER_DEFAULTS.stopGraceMs;
    this.#random = options.random ?? Math.random;
    this.#busy = options.busy ?? (() => false);
    this.#busyPassIntervalMs = options.busyPassIntervalMs ?? RUNNER_DEFAULTS.busyPassIntervalMs;
    this.#loop = new PassLoop({
      pass: () => this.#serial(() => this.#pass()),
      onError: (error) =>
        this.#logger?.warn({ err: describe(error) }, 'runner pass failed; trying again shortly'),
      active: () => this.#running && !this.#stopping,
      afterIdle: () => this.#armTimer(),
      busy: this.#busy,
      ...(options.calm === undefined ? {} : { calm: options.calm }),
      busyDelayMs: this.#busyPassIntervalMs,
      busyDelayMaxMs: options.busyPassMaxIntervalMs ?? RUNNER_DEFAULTS.busyPassMaxIntervalMs,
    });
    this.owner = options.owner ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;
    options.metrics?.watchConsumers(() => this.consumerGauges());
    this.#metrics = options.metrics;
  }

  readonly #metrics: RunnerMetrics | undefined;

  /** Adds a consumer; it is created (at the end of the log) or updated on the next pass. */
  add(definition: ConsumerDefinition): void {
    if (this.#consumers.has(definition.name)) {
      throw new Error(`A consumer named "${definition.name}" is already registered.`);
    }
    this.#consumers.set(definition.name, {
      definition,
      record: undefined,
      deliverer: undefined,
      inFlight: new Map(),
      disabling: 0,
    });
    this.wake();
  }

  get consumerNames(): string[] {
    return [...this.#consumers.keys()];
  }

  /** Registers every consumer, then works in the background until `stop()`. */
  async start(): Promise<void> {
    // A store that is not reachable yet is retried by later passes.
    await this.#serial(async () => {
      for (const active of this.#consumers.values()) {
        await this.#register(active).catch((error: unknown) => {
          this.#logger?.warn(
            { err: describe(error), consumer: active.definition.name },
            'could not register the consumer yet; retrying',
          );
        });
      }
    });
    this.#running = true;
    this.wake();
  }

  /** New transitions, a freed slot, a change from elsewhere: look for work soon. */
  wake(): void {
    this.#loop.wake();
  }

  /**
   * One pass over every consumer (fan out, claim, attempt), waiting for the attempts it started and
   * any already in flight. Answers how many attempts it started. For tests and `inlet worker --once`.
   */
  async runOnce(): Promise<number> {
    const started = await this.#serial(() => this.#pass());
    await this.#allInFlight();
    await this.#flushing;
    return started;
  }

  /** Runs passes until one finds nothing due now. */
  async idle(): Promise<void> {
    while ((await this.runOnce()) > 0);
  }

  /** Stops claiming; lets attempts in flight finish for a grace period, then aborts and releases them. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#running = false;
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    await this.#passChain.catch(() => undefined);
    const grace = new Promise<void>((resolve) => setTimeout(resolve, this.#stopGraceMs).unref());
    await Promise.race([this.#allInFlight(), grace]);
    for (const active of this.#consumers.values()) {
      for (const flight of active.inFlight.values()) flight.controller.abort(STOPPING);
    }
    await this.#allInFlight();
    await this.#flushing;
    for (const active of this.#consumers.values()) {
      await active.deliverer?.close?.().catch(() => undefined);
    }
  }

  /**
   * Per consumer: pending and dead messages, and the lag: age of the oldest transition it has not
   * delivered (its oldest pending message, or the first transition past its position), 0 when none.
   */
  async consumerGauges(): Promise<{ name: string; pending: number; dead: number; lagSeconds: number }[]> {
    const now = this.#clock.now();
    const gauges = [];
    for (const [name, active] of this.#consumers) {
      const stats = await this.#jobs.consumerStats(name);
      let oldest = stats.oldestPendingAtMs;
      const position = active.record?.position;
      if (position !== undefined) {
        const [next] = await this.#log.listTransitions({ afterSeq: position, limit: 1 });
        if (next !== undefined && (oldest === null || next.recordedAtMs < oldest)) oldest = next.recordedAtMs;
      }
      gauges.push({
        name,
        pending: stats.pending,
        dead: stats.dead,
        lagSeconds: oldest === null ? 0 : Math.max(0, now - oldest) / 1000,
      });
    }
    return gauges;
  }

  async #armTimer(): Promise<void> {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    let delay = this.#pollIntervalMs;
    const now = this.#clock.now();
    for (const active of this.#consumers.values()) {
      if (active.record?.enabled !== true) continue;
      const due = await this.#jobs.nextDueAtMs(active.definition.name).catch(() => undefined);
      // Due already, yet the pass just run did not take it: held back by order or by full slots,
      // which a finished attempt ends (it wakes the runner), or the poll looks again.
      if (due !== undefined && due > now) delay = Math.min(delay, due - now);
    }
    if (!this.#running) return;
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = undefined;
      this.wake();
    }, delay);
  }

  /** Passes never overlap: one fan-out and one claim per consumer at a time in this process. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#passChain.then(work, work);
    this.#passChain = next.catch(() => undefined);
    return next;
  }

  async #pass(): Promise<number> {
    let started = 0;
    const reads: PassReads = new Map();
    for (const active of this.#consumers.values()) {
      if (this.#stopping) break;
      try {
        if (active.record === undefined) await this.#register(active);
        await this.#fanOut(active, reads);
        started += await this.#dispatch(active);
      } catch (error) {
        this.#logger?.warn(
          { err: describe(error), consumer: active.definition.name },
          'consumer pass failed; trying again shortly',
        );
      }
    }
    return started;
  }

  async #register(active: Active): Promise<void> {
    const d = active.definition;
    const startPosition = d.startAt === 'beginning' ? 0 : await this.#log.lastTransitionSeq();
    const record = await this.#jobs.upsertConsumer({
      name: d.name,
      kind: d.kind,
      config: d.config ?? { events: d.events, models: d.models ?? null },
      configHash: configHash(d),
      ...(d.secret === undefined ? {} : { secret: d.secret }),
      ...(d.generateSecret === undefined ? {} : { generateSecret: d.generateSecret }),
      startPosition,
      nowMs: this.#clock.now(),
    });
    active.record = record;
    active.deliverer ??= typeof d.deliverer === 'function' ? d.deliverer(record) : d.deliverer;
  }

  /**
   * Moves the consumer's position over new transitions, creating its messages. While ingest is busy,
   * one small batch (enough to fill the slots); asked at every step, so a catch-up that began in a lull
   * stops as soon as webhooks crowd in again.
   */
  async #fanOut(active: Active, reads: PassReads): Promise<void> {
    const name = active.definition.name;
    // A 410 is being recorded: wait for it rather than read back the row it is about to change.
    if (active.disabling > 0) return;
    // Enabling (CLI, API, another instance) happens elsewhere: read the row again while disabled.
    if (active.record?.enabled !== true) active.record = await this.#jobs.getConsumer(name);
    let record = active.record;
    if (record === undefined || !record.enabled) return;
    for (;;) {
      const busy = this.#busy();
      const batch = busy ? Math.min(this.#fanOutBatch, 2 * active.definition.maxInFlight) : this.#fanOutBatch;
      const transitions = await this.#readLog(reads, record.position, batch);
      const last = transitions.at(-1);
      if (last === undefined) return;
      const wanted = transitions.filter((t) => consumerWants(active.definition, t));
      const moved = await this.#jobs.fanOut(
        name,
        record.position,
        last.seq,
        wanted.map((t) => newMessageFor(name, t)),
        this.#clock.now(),
      );
      if (!moved) {
        // Another instance fanned out first, or the consumer was disabled: start from the stored row.
        active.record = await this.#jobs.getConsumer(name);
        return;
      }
      for (const t of wanted) this.#remember(t);
      record = { ...record, position: last.seq };
      // A 410 that came in meanwhile keeps the consumer disabled.
      active.record = { ...(active.record ?? record), position: last.seq };
      if (active.disabling > 0 || busy || transitions.length < batch) return;
    }
  }

  /** The log after `afterSeq`, read once per pass however many consumers stand at that position. */
  #readLog(reads: PassReads, afterSeq: number, limit: number): Promise<TransitionRecord[]> {
    const key = `${afterSeq}:${limit}`;
    let read = reads.get(key);
    if (read === undefined) {
      read = this.#log.listTransitions({ afterSeq, limit });
      reads.set(key, read);
    }
    return read;
  }

  async #dispatch(active: Active): Promise<number> {
    const request = this.#claimRequest(active, active.definition.maxInFlight - active.inFlight.size);
    if (request === undefined) return 0;
    const claimed = await this.#jobs.claim(request);
    this.#start(active, claimed);
    return claimed.length;
  }

  /** A claim of up to `free` messages, or undefined when the consumer may not take any now. */
  #claimRequest(active: Active, free: number): ClaimRequest | undefined {
    const d = active.definition;
    if (this.#stopping || free <= 0) return undefined;
    if (active.record?.enabled !== true || active.disabling > 0 || active.deliverer === undefined) {
      return undefined;
    }
    return {
      consumer: d.name,
      owner: this.owner,
      nowMs: this.#clock.now(),
      leaseMs: d.attemptTimeoutMs + RUNNER_DEFAULTS.leaseMarginMs,
      limit: free,
      maxInFlight: d.maxInFlight,
      ordered: d.ordered,
    };
  }

  /** Starts an attempt of each claimed message. */
  #start(active: Active, claimed: readonly MessageRecord[]): void {
    for (const message of claimed) {
      const controller = new AbortController();
      // A retry due at once can be claimed again by the very write that records its last attempt,
      // before that attempt has let go of its slot: the new one starts after it.
      const previous = active.inFlight.get(message.id)?.done ?? Promise.resolve();
      const attempt = () => this.#attempt(active, message, controller);
      const flight: InFlight = {
        controller,
        done: previous.then(attempt, attempt).finally(() => {
          if (active.inFlight.get(message.id) === flight) active.inFlight.delete(message.id);
          this.wake();
        }),
      };
      active.inFlight.set(message.id, flight);
    }
  }

  async #attempt(active: Active, message: MessageRecord, controller: AbortController): Promise<void> {
    const d = active.definition;
    const deliverer = active.deliverer!;
    const attemptAtMs = this.#clock.now();
    const timeout = setTimeout(() => controller.abort('the attempt timed out'), d.attemptTimeoutMs);
    timeout.unref();
    let result: AttemptResult;
    const started = performance.now();
    try {
      const transition = await this.#transition(message.transitionId);
      if (transition === undefined) {
        result = {
          outcome: 'retry',
          error: `transition ${message.transitionId} is no longer in the log`,
          durationMs: 0,
        };
      } else {
        const outbound: OutboundMessage = {
          id: message.id,
          consumer: d.name,
          type: message.type,
          objectId: message.objectId,
          transitionId: message.transitionId,
          attempt: message.attempts + 1,
          recordedAtMs: transition.recordedAtMs,
          data: transitionDataView(transition),
        };
        result = await deliverer.deliver(outbound, controller.signal);
      }
    } catch (error) {
      result = {
        outcome: 'retry',
        error: describe(error),
        durationMs: Math.round(performance.now() - started),
      };
    } finally {
      clearTimeout(timeout);
    }
    if (controller.signal.aborted && controller.signal.reason === STOPPING) {
      await this.#jobs.release([message.id], this.owner).catch(() => undefined);
      return;
    }
    const verdict = verdictFor(result, {
      retryDelaysMs: d.retryDelaysMs,
      roundAttempts: message.roundAttempts + 1,
      nowMs: this.#clock.now(),
      timeScale: this.#timeScale,
      random: this.#random,
    });
    this.#metrics?.messageAttempt(d.name, verdict.state, result.durationMs / 1000);
    if (verdict.state === 'disable') {
      this.#logger?.warn({ consumer: d.name, reason: verdict.reason }, 'consumer disabled (410 Gone)');
      if (active.record !== undefined) active.record = { ...active.record, enabled: false };
      active.disabling++;
    } else if (verdict.state === 'dead') {
      this.#logger?.warn(
        {
          consumer: d.name,
          messageId: message.id,
          error: result.outcome === 'retry' ? result.error : undefined,
        },
        'message is dead: its retry schedule is used up',
      );
    }
    const recorded = this.#record({
      messageId: message.id,
      consumer: d.name,
      owner: this.owner,
      attempt: {
        atMs: attemptAtMs,
        status: result.status ?? null,
        durationMs: Math.round(result.durationMs),
        error:
          result.outcome === 'retry' ? result.error : result.outcome === 'disable' ? result.reason : null,
      },
      verdict,
    });
    try {
      await recorded;
    } finally {
      // Recorded (or given up on after retries, logged): from here the stored row is the truth, and a
      // claim reads it.
      if (verdict.state === 'disable') active.disabling--;
    }
  }

  async #transition(id: string): Promise<TransitionRecord | undefined> {
    const cached = this.#transitions.get(id);
    if (cached !== undefined) return cached;
    const found = await this.#log.getTransition(id);
    if (found !== undefined) this.#remember(found);
    return found;
  }

  #remember(transition: TransitionRecord): void {
    if (this.#transitions.has(transition.id)) return;
    this.#transitionBytes += transition.body.length;
    while (
      this.#transitions.size >= RUNNER_DEFAULTS.transitionCacheSize ||
      (this.#transitionBytes > RUNNER_DEFAULTS.transitionCacheBytes && this.#transitions.size > 0)
    ) {
      const [id, oldest] = this.#transitions.entries().next().value!;
      this.#transitions.delete(id);
      this.#transitionBytes -= oldest.body.length;
    }
    this.#transitions.set(transition.id, transition);
  }

  /** Outcomes finished in the same turn share one transaction. */
  #record(outcome: AttemptOutcome): Promise<void> {
    return new Promise<void>((resolve) => {
      this.#completions.push({ outcome, resolve });
      if (this.#flushScheduled) return;
      this.#flushScheduled = true;
      setImmediate(() => {
        this.#flushScheduled = false;
        this.#flushing = this.#flushing.then(() => this.#flush());
      });
      // The pass that refills the freed slot runs right after this flush, in the same turn of the event
      // loop, not one turn after it (at 1,000 deliveries/s a turn is a few ms of ingest, and a slot's
      // cycle is what bounds a destination's throughput at `maxInFlight`).
      this.wake();
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#completions;
    this.#completions = [];
    if (batch.length === 0) return;
    const refills = this.#refills(batch);
    for (let attempt = 1; ; attempt++) {
      try {
        const claimed = await this.#jobs.complete(
          batch.map((c) => c.outcome),
          this.#clock.now(),
          refills.map((r) => r.request),
        );
        // Started before the finished attempts let go of their slots: a pass in between finds them full.
        refills.forEach((r, i) => this.#start(r.active, claimed[i] ?? []));
        break;
      } catch (error) {
        if (attempt >= 5) {
          // The leases run out and the messages are attempted again (at least once).
          this.#logger?.error({ err: describe(error), messages: batch.length }, 'could not record attempts');
          break;
        }
        await new Promise((resolve) => setTimeout(resolve, backoffDelay({ baseMs: 100, attempt })));
      }
    }
    for (const c of batch) c.resolve();
  }

  /**
   * The claims that refill the slots these outcomes free, made with them (one write, not one per
   * claim): per consumer, its free slots once these attempts are over (they still hold theirs).
   */
  #refills(batch: readonly { outcome: AttemptOutcome }[]): { active: Active; request: ClaimRequest }[] {
    // While ingest is crowded the slots wait for the next (deferred) pass, as every other runner step.
    if (this.#busy()) return [];
    const finished = new Map<string, number>();
    for (const { outcome } of batch)
      finished.set(outcome.consumer, (finished.get(outcome.consumer) ?? 0) + 1);
    const refills = [];
    for (const [name, count] of finished) {
      const active = this.#consumers.get(name);
      if (active === undefined) continue;
      const request = this.#claimRequest(
        active,
        active.definition.maxInFlight - active.inFlight.size + count,
      );
      if (request !== undefined) refills.push({ active, request });
    }
    return refills;
  }

  async #allInFlight(): Promise<void> {
    for (;;) {
      const flights = [...this.#consumers.values()].flatMap((a) => [...a.inFlight.values()]);
      if (flights.length === 0) return;
      await Promise.all(flights.map((f) => f.done));
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
