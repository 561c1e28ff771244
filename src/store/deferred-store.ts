import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { HOLDING_CLOCK, type Clock } from '../clock.js';
import { StoreOpenError, StoreUnavailableError } from './errors.js';
import type { JobStore } from './job-types.js';
import type { RecoverStore } from './recover-types.js';
import type { RetentionStore } from './retention-types.js';
import type { TransitionLog } from './transition-types.js';
import type { Store, StoreCapabilities } from './types.js';

/**
 * A store that may not be reachable yet: `serve` listens at once and answers 503 until the first
 * connection succeeds, retrying in the background (CONTRACT §2). Nothing is opened before `connect()`,
 * so a `serve` that cannot even listen never touches (or creates) its database. A failure no retry can
 * mend (`StoreOpenError`: a wrong path, a database that does not exist, a foreign schema) ends the
 * retries and resolves `failed`.
 */
export class DeferredStore implements Store {
  readonly location: string;
  #inner: Store | undefined;
  #closed = false;
  #retryTimer: unknown;
  #wake: (() => void) | undefined;
  #firstAttempt: Promise<void> | undefined;
  #failure: StoreOpenError | undefined;
  #reportFailure: (error: StoreOpenError) => void = () => undefined;
  /** Resolves when opening failed for good (never, when the store opens or only passing faults occur). */
  readonly failed = new Promise<StoreOpenError>((resolve) => (this.#reportFailure = resolve));
  readonly #open: () => Promise<Store>;
  readonly #logger: Logger;

  constructor(
    readonly dialect: string,
    location: string,
    open: () => Promise<Store>,
    logger: Logger,
    readonly fallbackCapabilities: StoreCapabilities,
    /** Times the pause between two attempts to open the store (tests). */
    private readonly clock: Clock = HOLDING_CLOCK,
  ) {
    this.location = location;
    this.#open = open;
    this.#logger = logger;
  }

  /** Starts connecting (retrying until it works); resolves after the first attempt, whether it worked or not. */
  connect(): Promise<void> {
    this.#firstAttempt ??= new Promise<void>((firstAttemptDone) => {
      void this.#connect(1, firstAttemptDone);
    });
    return this.#firstAttempt;
  }

  get capabilities(): StoreCapabilities {
    return this.#inner?.capabilities ?? this.fallbackCapabilities;
  }

  get connected(): boolean {
    return this.#inner !== undefined;
  }

  /** Why opening failed for good, once it has. */
  get failure(): StoreOpenError | undefined {
    return this.#failure;
  }

  async #connect(attempt: number, firstAttemptDone: () => void): Promise<void> {
    const logger = this.#logger;
    try {
      const store = await this.#open();
      if (this.#closed) {
        firstAttemptDone();
        await store.close();
        return;
      }
      this.#inner = store;
      firstAttemptDone();
      if (attempt > 1) logger.info({ attempt, location: this.location }, 'store connected');
    } catch (error) {
      if (error instanceof StoreOpenError) {
        this.#failure = error;
        logger.error(
          { err: error.message, attempt, location: this.location },
          'store cannot be opened; not retrying',
        );
        this.#reportFailure(error);
        firstAttemptDone();
        return;
      }
      firstAttemptDone();
      if (this.#closed) return;
      const delayMs = backoffDelay({ baseMs: 250, maxMs: 5000, attempt });
      logger.warn(
        { err: (error as Error).message, attempt, retryInMs: delayMs, location: this.location },
        'store unreachable; answering 503 and retrying',
      );
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
        this.#retryTimer = this.clock.setTimeout(resolve, delayMs);
      });
      this.#retryTimer = undefined;
      this.#wake = undefined;
      if (!this.#closed) await this.#connect(attempt + 1, firstAttemptDone);
    }
  }

  #store(): Store {
    if (this.#failure !== undefined)
      throw new StoreUnavailableError(this.#failure.message, { cause: this.#failure });
    if (this.#inner === undefined)
      throw new StoreUnavailableError(`The store at ${this.location} is not connected yet.`);
    return this.#inner;
  }

  commitEvents: Store['commitEvents'] = async (events) => this.#store().commitEvents(events);
  recordRejections: Store['recordRejections'] = async (rows, limits) =>
    this.#store().recordRejections(rows, limits);
  listPredictions: Store['listPredictions'] = async (query) => this.#store().listPredictions(query);
  countPredictions: Store['countPredictions'] = async () => this.#store().countPredictions();
  getPrediction: Store['getPrediction'] = async (id) => this.#store().getPrediction(id);
  listEvents: Store['listEvents'] = async (objectId, query) => this.#store().listEvents(objectId, query);
  getEvent: Store['getEvent'] = async (key) => this.#store().getEvent(key);
  listRejections: Store['listRejections'] = async (query) => this.#store().listRejections(query);
  getRejection: Store['getRejection'] = async (id) => this.#store().getRejection(id);
  deliveriesPerMinute: Store['deliveriesPerMinute'] = async (sinceMs, untilMs) =>
    this.#store().deliveriesPerMinute(sinceMs, untilMs);
  ping: Store['ping'] = async () => this.#store().ping();
  probeWrite: Store['probeWrite'] = async () => this.#store().probeWrite();
  /** Each call goes to the connected store's log (or fails as unavailable, like the rest). */
  readonly transitions: TransitionLog = {
    listTransitions: async (query) => this.#store().transitions.listTransitions(query),
    lastTransitionSeq: async () => this.#store().transitions.lastTransitionSeq(),
    getTransition: async (id) => this.#store().transitions.getTransition(id),
  };
  /** Each call goes to the connected store's job store (or fails as unavailable, like the rest). */
  readonly jobs: JobStore = new Proxy({} as JobStore, {
    get: (_target, name: keyof JobStore | 'then' | symbol) => {
      // Not a thenable (so it can be returned from async code), and no symbol-keyed methods.
      if (name === 'then' || typeof name === 'symbol') return undefined;
      return async (...args: unknown[]) => {
        const jobs = this.#store().jobs;
        return (jobs[name] as (...a: unknown[]) => Promise<unknown>).apply(jobs, args);
      };
    },
  });
  /** Each call goes to the connected store's (or fails as unavailable, like the rest). */
  readonly recover: RecoverStore = new Proxy({} as RecoverStore, {
    get: (_target, name: keyof RecoverStore) => {
      return async (...args: unknown[]) => {
        const recover = this.#store().recover;
        return (recover[name] as (...a: unknown[]) => Promise<unknown>).apply(recover, args);
      };
    },
  });
  /** Each call goes to the connected store's (or fails as unavailable, like the rest). */
  readonly retention: RetentionStore = new Proxy({} as RetentionStore, {
    get: (_target, name: keyof RetentionStore) => {
      return async (...args: unknown[]) => {
        const retention = this.#store().retention;
        return (retention[name] as (...a: unknown[]) => Promise<unknown>).apply(retention, args);
      };
    },
  });

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== undefined) this.clock.clearTimeout(this.#retryTimer);
    this.#wake?.();
    await this.#inner?.close();
    this.#inner = undefined;
  }
}
