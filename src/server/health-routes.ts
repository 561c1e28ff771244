import type { FastifyInstance } from 'fastify';
import type { CommitBatcher } from '../ingest/commit-batcher.js';
import { sendError } from './send-error.js';

/** `/healthz` (the process answers) and `/readyz` (the store takes writes). */
export function registerHealthRoutes(app: FastifyInstance, batcher: CommitBatcher): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  // Ready exactly when the last write worked: a delivery's commit, or a probe write when none was recent.
  app.get('/readyz', async (_request, reply) => {
    if (await batcher.ready()) return { status: 'ready' };
    return sendError(reply, 'storage_unavailable', 'The store cannot take writes now.', {
      'retry-after': '2',
    });
  });
}
