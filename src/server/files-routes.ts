import type { FastifyInstance } from 'fastify';
import { archiveFileView, byOutputPath, type ArchiveReader } from '../archive/archive-views.js';
import { sendError } from './send-error.js';
import type { ReadStore, StoreParts } from '../store/types.js';

const SHA256 = /^[0-9a-fA-F]{64}$/;

/** The archive's side of the admin API (CONTRACT §11): a prediction's files, and the bytes of each. */
export function registerFilesRoutes(
  app: FastifyInstance,
  store: Pick<ReadStore, 'getPrediction'> & Pick<StoreParts, 'recover'>,
  archive: ArchiveReader | undefined,
): void {
  app.get<{ Params: { id: string } }>('/predictions/:id/files', async (request, reply) => {
    const files = await store.recover.listArchiveFiles(request.params.id);
    if (files.length === 0 && !(await store.getPrediction(request.params.id))) {
      return sendError(reply, 'not_found', `No prediction "${request.params.id}".`);
    }
    return { data: files.sort(byOutputPath).map(archiveFileView) };
  });

  app.get<{ Params: { sha256: string } }>('/files/:sha256', async (request, reply) => {
    const sha256 = request.params.sha256.toLowerCase();
    if (archive === undefined) {
      return sendError(
        reply,
        'not_found',
        'No archived files here: the archive is off (--archive / INLET_ARCHIVE).',
      );
    }
    const record = SHA256.test(sha256) ? await store.recover.findArchivedFile(sha256) : undefined;
    const stored = record === undefined ? undefined : await archive.storage.open(sha256);
    if (record === undefined || stored === undefined) {
      return sendError(reply, 'not_found', `No archived file ${request.params.sha256}.`);
    }
    return (
      reply
        .header('content-type', record.contentType ?? 'application/octet-stream')
        .header('content-length', String(stored.size))
        .header('etag', `"${sha256}"`)
        .header('cache-control', 'private, max-age=31536000, immutable')
        // Bytes from a model, served on the API's origin: never run as a page there.
        .header('x-content-type-options', 'nosniff')
        .header('content-security-policy', "default-src 'none'; sandbox")
        .send(stored.body)
    );
  });
}
