import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { type ErrorCode, ERROR_STATUS, WEBHOOK_ERROR_CODES } from '../errors.js';
import type { CommitPaths } from '../store/types.js';

/** What became of one webhook delivery (the `outcome` label). */
export const DELIVERY_OUTCOMES = ['accepted', 'duplicate', 'rejected', 'unavailable'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** The `code` label: an error code of CONTRACT §3, or `ok` for a 200. */
export type DeliveryCode = ErrorCode | 'ok';

/** Store writes whose failures are counted (the `operation` label). */
export const STORE_OPERATIONS = ['commit', 'record_rejections'] as const;
export type StoreOperation = (typeof STORE_OPERATIONS)[number];

/** What the gauges read at scrape time (the commit batcher). */
export interface CommitQueueState {
  readonly pending: number;
  readonly healthy: boolean;
}

// Ingest answers in well under a millisecond to a few seconds (the commit timeout).
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

type LabelledInc = { inc(value?: number): void };
type LabelledObserve = { observe(value: number): void };

/** What became of one message attempt (the `outcome` label of `inlet_messages_total`). */
export type MessageOutcome = 'delivered' | 'retry' | 'dead' | 'disable';

/** One consumer as the gauges read it at scrape time. */
export interface ConsumerGaugeState {
  readonly name: string;
  readonly pending: number;
  readonly dead: number;
  /** Age of the oldest transition it has not delivered; 0 when none waits. */
  readonly lagSeconds: number;
}

// An attempt takes from a millisecond (a local handler) to the destination's timeout (10 s by default).
const ATTEMPT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

let processRegistry: Registry | undefined;

/**
 * Process metrics (CPU, memory, event loop, GC) are collected once per process: their collectors
 * (a GC observer, an event loop monitor) are never released, so each app must not start its own.
 */
function sharedProcessRegistry(): Registry {
  if (processRegistry === undefined) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

/**
 * Inlet's Prometheus metrics, in a registry of their own (tests build many apps). Hot-path calls are
 * counter increments and histogram observations on pre-bound label sets.
 */
export class InletMetrics {
  /** Inlet's own metrics only (names start with `inlet_`). */
  readonly inletRegistry: Registry;
  /** What `/metrics` serves: Inlet's metrics plus the process metrics. */
  readonly registry: Registry;

  readonly #deliveries = new Map<string, LabelledInc>();
  readonly #latency = new Map<DeliveryOutcome, LabelledObserve>();
  readonly #conflicts: Counter;
  readonly #batchSize: Histogram;
  readonly #commitDuration: Histogram;
  readonly #commitWait: Histogram;
  readonly #commitTimeouts: Counter;
  readonly #storeErrors = new Map<StoreOperation, LabelledInc>();
  readonly #rejectionsRecorded: Counter;
  readonly #rejectionsDropped: Counter;
  readonly #rejectionsLimited: Counter;
  readonly #inflightRefused: Counter;
  #queue: CommitQueueState | undefined;
  #inflightHeld: (() => number) | undefined;
  readonly #messages: Counter;
  readonly #attemptDuration: Histogram;
  readonly #reconcilePolls: Counter;
  #consumers: (() => Promise<readonly ConsumerGaugeState[]>) | undefined;
  #commitPaths: (() => CommitPaths | undefined) | undefined;

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [new Registry()];
    const [own] = registers as [Registry];
    this.inletRegistry = own;

    const deliveries = new Counter({
      name: 'inlet_webhook_deliveries_total',
      help: 'Webhook deliveries answered, by outcome and code (ok for 200, else the error code).',
      labelNames: ['outcome', 'code'],
      registers,
    });
    const bind = (outcome: DeliveryOutcome, code: DeliveryCode) => {
      const child = deliveries.labels(outcome, code);
      child.inc(0);
      this.#deliveries.set(`${outcome}/${code}`, child);
    };
    bind('accepted', 'ok');
    bind('duplicate', 'ok');
    for (const code of WEBHOOK_ERROR_CODES) {
      bind(ERROR_STATUS[code] === 503 ? 'unavailable' : 'rejected', code);
    }

    const latency = new Histogram({
      name: 'inlet_webhook_duration_seconds',
      help: 'Time from receiving a webhook request to its answer, by outcome.',
      labelNames: ['outcome'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    for (const outcome of DELIVERY_OUTCOMES) {
      latency.zero({ outcome });
      this.#latency.set(outcome, latency.labels(outcome));
    }

    this.#conflicts = new Counter({
      name: 'inlet_webhook_conflicts_total',
      help: 'Stored deliveries whose terminal status disagreed with an earlier terminal status (kept, not applied).',
      registers,
    });
    this.#batchSize = new Histogram({
      name: 'inlet_commit_batch_size',
      help: 'Deliveries committed together in one transaction (group commit).',
      buckets: BATCH_BUCKETS,
      registers,
    });
    this.#commitDuration = new Histogram({
      name: 'inlet_commit_duration_seconds',
      help: 'Time the store took to commit one batch (transaction and fsync), failed commits included.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#commitWait = new Histogram({
      name: 'inlet_commit_wait_seconds',
      help: 'Time a delivery waited from being handed to the batcher until its commit landed or failed.',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.#commitTimeouts = new Counter({
      name: 'inlet_commit_timeouts_total',
      help: 'Deliveries whose commit did not land within the commit timeout (answered 503).',
      registers,
    });
    const storeErrors = new Counter({
      name: 'inlet_store_errors_total',
      help: 'Failed store writes, by operation (commit, record_rejections).',
      labelNames: ['operation'],
      registers,
    });
    for (const operation of STORE_OPERATIONS) {
      const child = storeErrors.labels(operation);
      child.inc(0);
      this.#storeErrors.set(operation, child);
    }
    this.#rejectionsRecorded = new Counter({
      name: 'inlet_rejections_recorded_total',
      help: 'Rejected requests written to the rejection log.',
      registers,
    });
    this.#rejectionsDropped = new Counter({
      name: 'inlet_rejections_dropped_total',
      help: 'Rejected requests not written to the rejection log (store away or backlog full).',
      registers,
    });
    this.#rejectionsLimited = new Counter({
      name: 'inlet_rejections_limited_total',
      help: 'Rejected requests only counted, not written to the rejection log: their source passed its rate or byte budget.',
      registers,
    });
    this.#inflightRefused = new Counter({
      name: 'inlet_inflight_refused_total',
      help: 'Requests answered 503 without reading their body: request bodies in memory were at --max-inflight-bytes.',
      registers,
    });
    const inflightHeld = () => this.#inflightHeld?.() ?? 0;
    new Gauge({
      name: 'inlet_inflight_body_bytes',
      help: 'Request body bytes held in memory (reserved) right now, all connections together.',
      registers,
      collect() {
        this.set(inflightHeld());
      },
    });
    const queue = () => this.#queue;
    new Gauge({
      name: 'inlet_commit_pending',
      help: 'Deliveries queued or being committed right now.',
      registers,
      collect() {
        this.set(queue()?.pending ?? 0);
      },
    });
    const commitPaths = () => this.#commitPaths?.();
    new Counter({
      name: 'inlet_store_commits_total',
      help: 'PostgreSQL group commits by path: guessed (one round trip, on the states this instance last wrote) or locked (rows locked and read first).',
      labelNames: ['path'],
      registers,
      collect() {
        const paths = commitPaths();
        this.reset();
        if (paths === undefined) return;
        this.inc({ path: 'guessed' }, paths.guessed);
        this.inc({ path: 'locked' }, paths.locked);
      },
    });
    new Counter({
      name: 'inlet_store_guess_misses_total',
      help: 'PostgreSQL group commits whose guessed states were wrong: rolled back, then committed the locked way.',
      registers,
      collect() {
        const paths = commitPaths();
        this.reset();
        if (paths !== undefined) this.inc(paths.staleGuesses);
      },
    });
    new Gauge({
      name: 'inlet_store_healthy',
      help: '1 while commits succeed, 0 while the store is failing to commit.',
      registers,
      collect() {
        this.set(queue()?.healthy === false ? 0 : 1);
      },
    });

    this.#messages = new Counter({
      name: 'inlet_messages_total',
      help: 'Message attempts, by destination (consumer) and outcome: delivered, retry, dead (schedule used up), disable (410).',
      labelNames: ['destination', 'outcome'],
      registers,
    });
    this.#attemptDuration = new Histogram({
      name: 'inlet_message_attempt_duration_seconds',
      help: 'Time one message attempt took (request to answer, or to the failure), by destination.',
      labelNames: ['destination'],
      buckets: ATTEMPT_BUCKETS,
      registers,
    });
    this.#reconcilePolls = new Counter({
      name: 'inlet_reconcile_polls_total',
      help: 'Objects reconcile looked at, by outcome: changed, unchanged, not_found, expired, already_terminal, waiting, failed.',
      labelNames: ['outcome'],
      registers,
    });
    const consumers = () => this.#consumers?.() ?? Promise.resolve([]);
    const perConsumer = (name: string, help: string, pick: (c: ConsumerGaugeState) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ['destination'],
        registers,
        async collect() {
          this.reset();
          for (const c of await consumers().catch(() => [])) this.set({ destination: c.name }, pick(c));
        },
      });
    perConsumer(
      'inlet_consumer_lag_seconds',
      'Age of the oldest transition a consumer has not delivered yet (0 when none waits).',
      (c) => c.lagSeconds,
    );
    perConsumer(
      'inlet_messages_pending',
      'Messages waiting for delivery (or a retry), by destination.',
      (c) => c.pending,
    );
    perConsumer(
      'inlet_messages_dead',
      'Dead letters: messages whose retry schedule is used up, by destination.',
      (c) => c.dead,
    );

    this.registry = options.processMetrics === false ? own : Registry.merge([sharedProcessRegistry(), own]);
  }

  /** The gauges read the batcher's queue at scrape time. */
  watchCommitQueue(state: CommitQueueState): void {
    this.#queue = state;
  }

  /** The commit-path counters read the store's own counts at scrape time (PostgreSQL only). */
  watchCommitPaths(read: () => CommitPaths | undefined): void {
    this.#commitPaths = read;
  }

  /** The gauge reads the request body bytes held at scrape time. */
  watchInflight(held: () => number): void {
    this.#inflightHeld = held;
  }

  /** One message attempt by the runner. */
  messageAttempt(destination: string, outcome: MessageOutcome, seconds: number): void {
    this.#messages.labels(destination, outcome).inc();
    this.#attemptDuration.labels(destination).observe(seconds);
  }

  /** One object reconcile looked at (polled or not), by what it came to. */
  reconcilePoll(outcome: string): void {
    this.#reconcilePolls.labels(outcome).inc();
  }

  /** The consumer gauges read this at scrape time (the runner's consumers). */
  watchConsumers(read: () => Promise<readonly ConsumerGaugeState[]>): void {
    this.#consumers = read;
  }

  /** One answered webhook delivery; `seconds` from receiving the request to the answer. */
  delivery(outcome: DeliveryOutcome, code: DeliveryCode, seconds: number): void {
    this.#deliveries.get(`${outcome}/${code}`)?.inc();
    this.#latency.get(outcome)?.observe(seconds);
  }

  conflict(): void {
    this.#conflicts.inc();
  }

  /** One batch handed to the store, committed or not. */
  commitBatch(size: number, seconds: number): void {
    this.#batchSize.observe(size);
    this.#commitDuration.observe(seconds);
  }

  commitWait(seconds: number): void {
    this.#commitWait.observe(seconds);
  }

  commitTimeout(): void {
    this.#commitTimeouts.inc();
  }

  storeError(operation: StoreOperation): void {
    this.#storeErrors.get(operation)?.inc();
  }

  rejectionsRecorded(count: number): void {
    this.#rejectionsRecorded.inc(count);
  }

  rejectionsDropped(count: number): void {
    this.#rejectionsDropped.inc(count);
  }

  rejectionsLimited(count: number): void {
    this.#rejectionsLimited.inc(count);
  }

  inflightRefused(): void {
    this.#inflightRefused.inc();
  }

  /** The Prometheus text exposition of `registry`. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export function createMetrics(options: { processMetrics?: boolean } = {}): InletMetrics {
  return new InletMetrics(options);
}
