import type { FastifyRequest } from 'fastify';
import type { ArchiveFileRecord, RecoverStore } from '../store/recover-types.js';
import type { ObjectRecord } from '../store/types.js';
import type { ArchiveStorage } from './archive-storage.js';
import { replaceOutputUrls } from './output-urls.js';

/** What the API needs of the archive: its storage, and the public URL archived files are linked from. */
export interface ArchiveReader {
  readonly storage: ArchiveStorage;
  /** `INLET_PUBLIC_URL`; else links are built from the request's own host. */
  readonly publicUrl: string | undefined;
}

function filePath(sha256: string): string {
  return `/api/files/${sha256}`;
}

/** One row of `GET /api/predictions/:id/files`: an archived file, or a URL not archived (yet). */
export function archiveFileView(record: ArchiveFileRecord): Record<string, unknown> {
  if (record.sha256 !== null && record.archivedAtMs !== null) {
    return {
      path: record.path,
      source_url: record.sourceUrl,
      sha256: record.sha256,
      size: record.size,
      content_type: record.contentType,
      archived_at: new Date(record.archivedAtMs).toISOString(),
      url: filePath(record.sha256),
    };
  }
  return { path: record.path, source_url: record.sourceUrl, error: record.error };
}

/** Paths in document order: `output[2]` before `output[10]`. */
export function byOutputPath(a: ArchiveFileRecord, b: ArchiveFileRecord): number {
  return a.path.localeCompare(b.path, 'en', { numeric: true });
}

/** Where this Inlet is reached: `INLET_PUBLIC_URL`, else the scheme and `Host` of the request. */
export function publicBase(request: FastifyRequest, publicUrl: string | undefined): string {
  if (publicUrl !== undefined) return publicUrl.replace(/\/+$/, '');
  return `${request.protocol}://${request.host}`;
}

/** `output` with each archived URL replaced by Inlet's absolute URL of the copy. */
export async function archivedOutput(
  recover: Pick<RecoverStore, 'listArchiveFiles'>,
  record: ObjectRecord,
  base: string,
): Promise<unknown> {
  const output = record.object.output ?? null;
  const files = await recover.listArchiveFiles(record.id);
  const replacements = new Map<string, { sourceUrl: string; url: string }>();
  for (const file of files) {
    if (file.sha256 === null || file.archivedAtMs === null) continue;
    replacements.set(file.path, { sourceUrl: file.sourceUrl, url: `${base}${filePath(file.sha256)}` });
  }
  return replaceOutputUrls(output, replacements);
}
