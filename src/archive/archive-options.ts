import type { Env, ServeConfig } from '../config.js';
import type { ArchiveOptions } from './index.js';

/** `serve`'s archive settings, with the token Replicate's file host may ask for. */
export function archiveOptionsOf(
  config: Pick<ServeConfig, 'archive' | 'archiveHosts' | 'archiveMaxBytes' | 'publicUrl'>,
  env: Env,
): ArchiveOptions {
  if (config.archive === undefined) throw new Error('the archive is off');
  const token = env.REPLICATE_API_TOKEN?.trim();
  return {
    destination: config.archive,
    hosts: config.archiveHosts,
    maxBytes: config.archiveMaxBytes,
    token: token === undefined || token === '' ? undefined : token,
    publicUrl: config.publicUrl,
  };
}
