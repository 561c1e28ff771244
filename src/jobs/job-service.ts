import type { Service } from '../services.js';
import type { JobStore } from '../store/job-types.js';
import type { TransitionLog } from '../store/transition-types.js';
import type { ConsumerDefinition } from './consumer.js';
import type { DestinationConfig } from './destination-config.js';
import { destinationConsumer, type DestinationConsumerOptions } from './destinations.js';
import type { Clock } from '../clock.js';
import { Runner, type RunnerLogger, type RunnerMetrics } from './runner.js';

export interface JobServiceOptions {
  jobs: JobStore;
  log: TransitionLog;
  /** HTTP destinations of the config file (upserted when the service starts). */
  destinations: readonly DestinationConfig[];
  /** Other consumers (library handlers, brokers). */
  consumers?: readonly ConsumerDefinition[];
  logger?: RunnerLogger;
  metrics?: RunnerMetrics;
  /** `INLET_TIME_SCALE`: multiplies retry delays (tests). */
  timeScale?: number;
  pollIntervalMs?: number;
  clock?: Clock;
  /** Wake-ups for new transitions (the commit batcher in this process, PostgreSQL notifications). */
  subscribe?: (wake: () => void) => () => void;
  destinationOptions?: DestinationConsumerOptions;
  /** True while ingest is crowded: the runner defers to it (see `RunnerOptions.busy`). */
  busy?: () => boolean;
  /** True when ingest has nothing waiting (see `RunnerOptions.calm`). */
  calm?: () => boolean;
}

/** The runner as a service of `serve` and `inlet worker`: started after the store, stopped before it. */
export class JobService implements Service {
  readonly name = 'runner';
  readonly runner: Runner;
  readonly #subscribe: JobServiceOptions['subscribe'];
  readonly #jobs: JobStore;
  readonly #logger: RunnerLogger | undefined;
  #unsubscribe: (() => void) | undefined;
  #unwatch: (() => Promise<void>) | undefined;

  constructor(options: JobServiceOptions) {
    this.runner = new Runner({
      jobs: options.jobs,
      log: options.log,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.metrics === undefined ? {} : { metrics: options.metrics }),
      ...(options.timeScale === undefined ? {} : { timeScale: options.timeScale }),
      ...(options.pollIntervalMs === undefined ? {} : { pollIntervalMs: options.pollIntervalMs }),
      ...(options.clock === undefined ? {} : { clock: options.clock }),
      ...(options.busy === undefined ? {} : { busy: options.busy }),
      ...(options.calm === undefined ? {} : { calm: options.calm }),
    });
    for (const destination of options.destinations) {
      this.runner.add(destinationConsumer(destination, options.destinationOptions));
    }
    for (const consumer of options.consumers ?? []) this.runner.add(consumer);
    this.#subscribe = options.subscribe;
    this.#jobs = options.jobs;
    this.#logger = options.logger;
  }

  async start(): Promise<void> {
    await this.runner.start();
    this.#unsubscribe = this.#subscribe?.(() => this.runner.wake());
    try {
      this.#unwatch = await this.#jobs.watchTransitions(() => this.runner.wake());
    } catch (error) {
      // The poll interval still finds the work.
      this.#logger?.warn({ err: (error as Error).message }, 'cannot listen for other instances’ transitions');
    }
  }

  async stop(): Promise<void> {
    this.#unsubscribe?.();
    await this.#unwatch?.();
    await this.runner.stop();
  }
}
