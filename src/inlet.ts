import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createArchive, type ArchiveOptions } from './archive/index.js';
import { DEFAULT_LISTEN_EXPIRY_MS, type ServeConfig } from './config.js';
import { Ingest } from './ingest/accept.js';
import { CommitBatcher, type ReadinessOptions } from './ingest/commit-batcher.js';
import { RejectionLog } from './ingest/rejection-log.js';
import type { DestinationConfig } from './jobs/destination-config.js';
import { httpDestinationOf } from './jobs/destinations.js';
import { createDeliverer } from './jobs/create-deliverer.js';
import { JobService } from './jobs/job-service.js';
import { createMetrics, type InletMetrics } from './metrics/metrics.js';
import { createReconcile, type ReconcileOptions } from './reconcile/index.js';
import { RetentionService, type RetentionServiceOptions } from './retention/retention-service.js';
import { buildApp } from './server/app.js';
import { TrustedProxies } from './server/trusted-proxies.js';
import { type Service, ServiceList } from './services.js';
import type { Store } from './store/types.js';

export type InletConfig = Pick<
  ServeConfig,
  | 'webhookPath'
  | 'secrets'
  | 'toleranceSec'
  | 'maxBodyBytes'
  | 'maxInflightBytes'
  | 'acceptHexSignature'
  | 'commitTimeoutMs'
  | 'insecureSkipVerify'
  | 'maxRejections'
  | 'rejectionBodyBudgetBytes'
  | 'rejectionsPerSecond'
  | 'rejectionBytesPerSecond'
  | 'adminToken'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
  | 'logFormat'
  | 'trustProxy'
>;

export interface Inlet {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly batcher: CommitBatcher;
  readonly metrics: InletMetrics;
  /** The runner (destinations, handlers), when the store has a transitions log; started by `start()`. */
  readonly jobs: JobService | undefined;
  /** The services `start()` starts, in order (`close()` stops them in reverse). */
  readonly services: readonly string[];
  /** Starts the services (after the store is connected): runner, streams, archive, reconcile, retention. */
  start(): Promise<void>;
  /** Stops taking requests, finishes in-flight requests and commits, then closes the store. */
  close(): Promise<void>;
  /**
   * Resolves once the commits queued or in flight have landed and the rejections recorded so far are
   * written (the rejection log writes in the background): what a request answered before this call
   * did is then readable from the store.
   */
  settled(): Promise<void>;
}

/** What `serve` adds to the core's config: the config file's destinations, the time scale, TLS. */
export interface InletJobOptions {
  destinations?: readonly DestinationConfig[];
  /** `INLET_TIME_SCALE`. */
  timeScale?: number;
  pollIntervalMs?: number;
  /** The certificate and key read from `--tls-cert` / `--tls-key`: the app then speaks HTTPS. */
  https?: { cert: Buffer; key: Buffer };
  /** When `/readyz` probes with a write (tests: a clock of their own). */
  readiness?: ReadinessOptions;
  /** `--archive`: copy succeeded outputs' files; off when absent. */
  archive?: ArchiveOptions;
  /** `--retention`: prune once a day; off when absent. */
  retention?: Omit<RetentionServiceOptions, 'store' | 'archive' | 'logger' | 'timeScale'>;
  /** Poll Replicate for objects whose deliveries stopped (`REPLICATE_API_TOKEN` set); off when absent. */
  reconcile?: ReconcileOptions;
  /** `INLET_LISTEN_EXPIRY`: an `inlet listen` consumer not seen for this long is dropped (default 7 days). */
  listenExpiryMs?: number;
}

/** On close, connections get the commit timeout and this much more to finish before they are cut. */
const CLOSE_MARGIN_MS = 5_000;

/** Wires the core (ingest, group commit, rejection log) to a store and an HTTP app, without listening. */
export function createInlet(
  config: InletConfig,
  store: Store,
  logger: Logger,
  jobOptions: InletJobOptions = {},
): Inlet {
  const metrics = createMetrics();
  const batcher = new CommitBatcher(store, {
    commitTimeoutMs: config.commitTimeoutMs,
    logger,
    metrics,
    ...(jobOptions.readiness === undefined ? {} : { readiness: jobOptions.readiness }),
  });
  const rejections = new RejectionLog(
    store,
    { maxRows: config.maxRejections, maxBodyBytes: config.rejectionBodyBudgetBytes },
    logger,
    metrics,
    { rates: { perSecond: config.rejectionsPerSecond, bytesPerSecond: config.rejectionBytesPerSecond } },
  );
  const ingest = new Ingest(
    { ...config, previewOutput: config.logFormat === 'pretty' },
    batcher,
    rejections,
    logger,
  );
  const log = store.transitions;
  const jobs = new JobService({
    jobs: store.jobs,
    log,
    destinations: jobOptions.destinations ?? [],
    logger,
    metrics,
    ...(jobOptions.timeScale === undefined ? {} : { timeScale: jobOptions.timeScale }),
    ...(jobOptions.pollIntervalMs === undefined ? {} : { pollIntervalMs: jobOptions.pollIntervalMs }),
    subscribe: (wake) => batcher.onTransitions(wake),
    // Saturated, not steady: at a steady 1,000 deliveries/s ingest is almost never crowded.
    busy: () => batcher.crowded,
    calm: () => batcher.calm,
  });
  const archive =
    jobOptions.archive === undefined
      ? undefined
      : createArchive(jobOptions.archive, store, {
          logger,
          ...(jobOptions.timeScale === undefined ? {} : { timeScale: jobOptions.timeScale }),
        });
  const unsubscribeArchive = archive && batcher.onTransitions(() => archive.service.wake());
  const retention =
    jobOptions.retention === undefined
      ? undefined
      : new RetentionService({
          ...jobOptions.retention,
          store,
          logger,
          ...(archive === undefined ? {} : { archive: archive.reader.storage }),
          ...(jobOptions.timeScale === undefined ? {} : { timeScale: jobOptions.timeScale }),
        });
  // The live stream's wake-ups: this process's commits, and other instances' once `start()` listens.
  const streamWakers = new Set<() => void>();
  const wakeStreams = () => {
    for (const wake of streamWakers) wake();
  };
  const unsubscribeStreams = batcher.onTransitions(wakeStreams);
  let unwatchStreams: (() => Promise<void>) | undefined;
  const reconcile =
    jobOptions.reconcile === undefined
      ? undefined
      : createReconcile(jobOptions.reconcile, { store, sink: ingest, logger, metrics });
  const app = buildApp(
    {
      webhookPath: config.webhookPath,
      maxBodyBytes: config.maxBodyBytes,
      maxInflightBytes: config.maxInflightBytes,
      adminToken: config.adminToken,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
      // On close, a request waiting for its commit is answered within the commit timeout.
      closeTimeoutMs: config.commitTimeoutMs + CLOSE_MARGIN_MS,
      ...(jobOptions.https === undefined ? {} : { https: jobOptions.https }),
      ...(config.trustProxy === '' ? {} : { trustProxy: new TrustedProxies(config.trustProxy) }),
    },
    {
      store,
      ingest,
      batcher,
      logger,
      metrics,
      ...(archive === undefined ? {} : { archive: archive.reader }),
      stream: {
        onTransitions: (wake) => {
          streamWakers.add(wake);
          return () => streamWakers.delete(wake);
        },
        listenExpiryMs: jobOptions.listenExpiryMs ?? DEFAULT_LISTEN_EXPIRY_MS,
        ...(jobOptions.pollIntervalMs === undefined ? {} : { pollIntervalMs: jobOptions.pollIntervalMs }),
      },
      jobs: {
        log,
        ...(jobs === undefined ? {} : { wake: () => jobs.runner.wake() }),
        testDeliverer: (destination) => createDeliverer(httpDestinationOf(destination)),
      },
    },
  );
  // Started in this order once the store is connected, stopped in reverse; the server is the door:
  // it listens first (so `/readyz` answers while the store connects) and closes first on shutdown.
  const services: Service[] = [
    jobs,
    {
      name: 'streams',
      start: async () => {
        // One process on its store: the batcher's wake-ups are all there is.
        if (!store.capabilities.crossProcessNotify) return;
        try {
          unwatchStreams = await store.jobs.watchTransitions(wakeStreams);
        } catch (error) {
          // Streams still poll every second.
          logger.warn({ err: (error as Error).message }, 'cannot listen for other instances’ transitions');
        }
      },
      stop: async () => {
        unsubscribeStreams();
        await unwatchStreams?.();
      },
    },
  ];
  if (archive !== undefined) {
    services.push({
      name: 'archive',
      start: () => archive.service.start(),
      stop: async () => {
        unsubscribeArchive?.();
        await archive.service.stop();
      },
    });
  }
  if (reconcile !== undefined) {
    services.push({ name: 'reconcile', start: () => reconcile.start(), stop: () => reconcile.stop() });
  }
  if (retention !== undefined) {
    services.push({ name: 'retention', start: () => retention.start(), stop: () => retention.stop() });
  }
  const running = new ServiceList(services);
  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    batcher,
    metrics,
    jobs,
    services: running.names,
    start: () => running.start(),
    close() {
      closing ??= (async () => {
        await app.close();
        await running.stop();
        await batcher.drain();
        await rejections.flush();
        await store.close();
      })();
      return closing;
    },
    async settled() {
      await batcher.drain();
      await rejections.flush();
    },
  };
}
