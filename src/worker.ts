import type { Logger } from 'pino';
import type { DestinationConfig } from './jobs/destination-config.js';
import { JobService } from './jobs/job-service.js';
import { ServiceList } from './services.js';
import type { Store } from './store/types.js';

export interface Worker {
  /** The runner `serve` also starts: `runOnce()` for `inlet worker --once`. */
  readonly jobs: JobService;
  /** What `inlet worker` starts and stops: the runner alone (no webhook listener). */
  readonly services: ServiceList;
}

/** `inlet worker`'s core: the runner of `serve`'s service list, on a store opened by the caller. */
export function createWorker(
  store: Store,
  logger: Logger,
  options: { destinations: readonly DestinationConfig[]; timeScale: number },
): Worker {
  const jobs = new JobService({
    jobs: store.jobs,
    log: store.transitions,
    destinations: options.destinations,
    logger,
    timeScale: options.timeScale,
  });
  return { jobs, services: new ServiceList([jobs]) };
}
