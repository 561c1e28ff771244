import type { Logger } from 'pino';
import { backoffDelay } from '../backoff.js';
import { HOLDING_CLOCK, type Clock } from '../clock.js';
import { StoreOpenError, StoreUnavailableError } from './errors.js';
import type { JobStore } from './job-types.js';
import type { RecoverStore } from './recover-types.js';
import type { RetentionStore } from './retention-types.js';
import type { TransitionLog } from './transition-types.js';
import type {
  CommitPaths,
  IngestStore,
  ReadStore,
  Store,
  StoreCapabilities,
  StoreLifecycle,
} from './types.js';

/** The store's own methods that go to the connected store (`close` and the facts are its own). */
type ForwardedMethods = Omit<IngestStore, 'commitPaths'> & ReadStore & Pick<StoreLifecycle, 'ping'>;
/** Every forwarded method, once: the compiler finds one missing when a role gains a method. */
const FORWARDED_METHODS = {
  commitEvents: true,
  recordRejections: true,
  probeWrite: true,
  listPredictions: true,
  countPredictions: true,
  getPrediction: true,
  listEvents: true,
  getEvent: true,
  listRejections: true,
  getRejection: true,
  deliveriesPerMinute: true,
  ping: true,
} as const satisfies Record<keyof ForwardedMethods, true>;

/**
 * An object whose every method calls the same method of `current()`, looked up at each call; what
 * `current` throws comes out as the call's rejection.
 */
export function forwarding<T extends object>(current: () => T): T {
  return new Proxy({} as T, {
    get: (_target, name) => {
      // Not a thenable (so it can be returned from async code), and no symbol-keyed methods.
      if (name === 'then' || typeof name === 'symbol') return undefined;
      return async (...args: unknown[]) => {
        const target = current();
        return (target[name as keyof T] as (...a: unknown[]) => Promise<unknown>).apply(target, args);
      };
    },
  });
}

// The forwarded methods are set in the constructor, from FORWARDED_METHODS.
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging, @typescript-eslint/no-empty-object-type
export interface DeferredStore extends ForwardedMethods {}

/**
 * A store that may not be reachable yet: `serve` listens at once and answers 503 until the first
 * connection succeeds, retrying in the background (CONTRACT §2). Nothing is opened before `connect()`,
 * so a `serve` that cannot even listen never touches (or creates) its database. A failure no retry can
 * mend (`StoreOpenError`: a wrong path, a database that does not exist, a foreign schema) ends the
 * retries and resolves `failed`.
 */
// eslint-disable-next-line @typescript-eslint/no-unsafe-declaration-merging
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
    const store = forwarding<ForwardedMethods>(() => this.#store());
    for (const name of Object.keys(FORWARDED_METHODS) as (keyof ForwardedMethods)[]) {
      Object.defineProperty(this, name, { value: Reflect.get(store, name), enumerable: true });
    }
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

  /** The open store's commit paths (PostgreSQL's), or none before it opens. */
  get commitPaths(): CommitPaths | undefined {
    return this.#inner?.commitPaths;
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

  /** Each part's calls go to the connected store's part (or fail as unavailable, like the rest). */
  readonly transitions: TransitionLog = forwarding(() => this.#store().transitions);
  readonly jobs: JobStore = forwarding(() => this.#store().jobs);
  readonly recover: RecoverStore = forwarding(() => this.#store().recover);
  readonly retention: RetentionStore = forwarding(() => this.#store().retention);

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#retryTimer !== undefined) this.clock.clearTimeout(this.#retryTimer);
    this.#wake?.();
    await this.#inner?.close();
    this.#inner = undefined;
  }
}
