import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { ServeConfig } from './config.js';
import { Ingest } from './ingest/accept.js';
import { CommitBatcher } from './ingest/commit-batcher.js';
import { RejectionLog } from './ingest/rejection-log.js';
import { createMetrics, type InletMetrics } from './metrics/metrics.js';
import { buildApp } from './server/app.js';
import type { Store } from './store/types.js';

export type InletConfig = Pick<
  ServeConfig,
  | 'webhookPath'
  | 'secrets'
  | 'toleranceSec'
  | 'maxBodyBytes'
  | 'acceptHexSignature'
  | 'commitTimeoutMs'
  | 'insecureSkipVerify'
  | 'maxRejections'
  | 'rejectionBodyBudgetBytes'
  | 'adminToken'
  | 'headersTimeoutMs'
  | 'requestTimeoutMs'
>;

export interface Inlet {
  readonly app: FastifyInstance;
  readonly store: Store;
  readonly batcher: CommitBatcher;
  readonly metrics: InletMetrics;
  /** Stops taking requests, finishes in-flight requests and commits, then closes the store. */
  close(): Promise<void>;
}

/** Wires the core (ingest, group commit, rejection log) to a store and an HTTP app, without listening. */
export function createInlet(config: InletConfig, store: Store, logger: Logger): Inlet {
  const metrics = createMetrics();
  const batcher = new CommitBatcher(store, { commitTimeoutMs: config.commitTimeoutMs, logger, metrics });
  const rejections = new RejectionLog(
    store,
    { maxRows: config.maxRejections, maxBodyBytes: config.rejectionBodyBudgetBytes },
    logger,
    metrics,
  );
  const ingest = new Ingest(config, batcher, rejections, logger);
  const app = buildApp(
    {
      webhookPath: config.webhookPath,
      maxBodyBytes: config.maxBodyBytes,
      adminToken: config.adminToken,
      headersTimeoutMs: config.headersTimeoutMs,
      requestTimeoutMs: config.requestTimeoutMs,
    },
    { store, ingest, batcher, logger, metrics },
  );
  let closing: Promise<void> | undefined;
  return {
    app,
    store,
    batcher,
    metrics,
    close() {
      closing ??= (async () => {
        await app.close();
        await batcher.drain();
        await rejections.flush();
        await store.close();
      })();
      return closing;
    },
  };
}
