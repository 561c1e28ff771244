import type { RunnerLogger } from '../jobs/runner.js';
import type { ReplicateApiConfig } from '../replicate/api-config.js';
import { type FetchLike, ReplicateClient, type ReplicateClientOptions } from '../replicate/client.js';
import { ReconcileService, type ReconcileServiceOptions } from './reconcile-service.js';

export { pollDelayMs, RECONCILE_DEFAULTS } from './backoff.js';
export { pollDeliveryKey, pollEvent } from './poll-event.js';
export {
  POLL_OUTCOMES,
  ReconcileService,
  type EventSink,
  type PollOutcome,
  type PollReport,
  type ReconcileMetrics,
} from './reconcile-service.js';

/** Longest wait for one answer of Replicate's API (real time). */
const REQUEST_TIMEOUT_MS = 30_000;

/** What `serve` hands the core to turn reconcile on (`REPLICATE_API_TOKEN` is set). */
export interface ReconcileOptions {
  api: ReplicateApiConfig;
  /** `INLET_RECONCILE_AFTER_MS`. */
  afterMs: number;
  /** Tests: a fake fetch, a short interval. */
  client?: Pick<ReplicateClientOptions, 'fetch' | 'retry'>;
  service?: Partial<Omit<ReconcileServiceOptions, 'store' | 'fetcher' | 'sink' | 'afterMs'>>;
}

/** Logs each wait on a throttled (429) or failing call, with the wait actually taken. */
export function logRetries(logger: RunnerLogger | undefined): ReplicateClientOptions['onRetry'] {
  return ({ url, status, waitMs }) =>
    logger?.warn(
      { url, status: status ?? null, waitMs: Math.round(waitMs) },
      status === 429
        ? `Replicate answered 429 (throttled): trying again in ${Math.round(waitMs)} ms`
        : `Replicate call failed (${status ?? 'network error'}): trying again in ${Math.round(waitMs)} ms`,
    );
}

/** A sleep that ends early, rejecting, when `signal` aborts (stopping must not wait out a `Retry-After`). */
function abortableSleep(signal: AbortSignal): (ms: number) => Promise<void> {
  return (ms) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) {
        reject(new Error('stopping'));
        return;
      }
      const onAbort = () => {
        clearTimeout(timer);
        reject(new Error('stopping'));
      };
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal.addEventListener('abort', onAbort, { once: true });
    });
}

/** Reconcile as a service of `serve`: the client, the loop, and a stop that cuts waits short. */
export function createReconcile(
  options: ReconcileOptions,
  context: Pick<ReconcileServiceOptions, 'store' | 'sink'> & {
    logger?: RunnerLogger;
    metrics?: ReconcileServiceOptions['metrics'];
  },
): { service: ReconcileService; start(): Promise<void>; stop(): Promise<void> } {
  const controller = new AbortController();
  const base: FetchLike = options.client?.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const client = new ReplicateClient(options.api, {
    ...options.client,
    // A call that hangs must neither hold a poll forever nor keep `serve` from stopping.
    fetch: (input, init) =>
      base(input, {
        ...init,
        signal: AbortSignal.any([controller.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      }),
    onRetry: logRetries(context.logger),
    sleep: abortableSleep(controller.signal),
  });
  const service = new ReconcileService({
    store: context.store,
    sink: context.sink,
    fetcher: client,
    afterMs: options.afterMs,
    timeScale: options.api.timeScale,
    ...(context.logger === undefined ? {} : { logger: context.logger }),
    ...(context.metrics === undefined ? {} : { metrics: context.metrics }),
    ...options.service,
  });
  return {
    service,
    start: () => service.start(),
    async stop() {
      controller.abort();
      await service.stop();
    },
  };
}
