import type { RunnerLogger } from '../jobs/runner.js';
import type { Store } from '../store/types.js';
import type { ArchiveDestination } from './archive-destination.js';
import { ArchiveService, type ArchiveServiceOptions } from './archive-service.js';
import type { ArchiveStorage } from './archive-storage.js';
import type { ArchiveReader } from './archive-views.js';
import { FileArchiveStorage } from './file-storage.js';
import { HostAllowList } from './host-allow-list.js';
import { S3ArchiveStorage } from './s3-storage.js';

export { ArchiveService } from './archive-service.js';
export type { ArchiveReader } from './archive-views.js';

/** What `serve` hands the core to turn the archive on (parsed from `--archive` and its variables). */
export interface ArchiveOptions {
  destination: ArchiveDestination;
  hosts: readonly string[];
  maxBytes: number;
  /** `REPLICATE_API_TOKEN`. */
  token: string | undefined;
  publicUrl: string | undefined;
  /** Tests: a short poll, a quick schedule, a fake fetch. */
  service?: Partial<Omit<ArchiveServiceOptions, 'store' | 'storage' | 'allowList' | 'maxBytes' | 'token'>>;
}

export function createArchiveStorage(destination: ArchiveDestination): ArchiveStorage {
  return destination.kind === 'file'
    ? new FileArchiveStorage(destination.dir)
    : new S3ArchiveStorage(destination);
}

/** The archive job and what the API reads of it. */
export function createArchive(
  options: ArchiveOptions,
  store: Store,
  context: { logger?: RunnerLogger; timeScale?: number },
): { service: ArchiveService; reader: ArchiveReader } {
  const storage = createArchiveStorage(options.destination);
  const service = new ArchiveService({
    store,
    storage,
    allowList: new HostAllowList(options.hosts),
    maxBytes: options.maxBytes,
    token: options.token,
    ...(context.logger === undefined ? {} : { logger: context.logger }),
    ...(context.timeScale === undefined ? {} : { timeScale: context.timeScale }),
    ...options.service,
  });
  return { service, reader: { storage, publicUrl: options.publicUrl } };
}
