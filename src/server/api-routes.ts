import type { FastifyInstance, FastifyReply } from 'fastify';
import { archivedOutput, publicBase, type ArchiveReader } from '../archive/archive-views.js';
import { errorBody } from '../errors.js';
import type { Store } from '../store/types.js';
import { eventDetailView, eventView, predictionPageView, predictionView, rejectionView } from '../views.js';
import { encodeSeqCursor } from '../store/cursor.js';
import { InvalidQueryError, type QueryParams, parsePredictionQuery, parseSeqQuery } from './api-query.js';

function notFound(reply: FastifyReply, what: string) {
  return reply.code(404).send(errorBody('not_found', `No ${what}.`));
}

/** The read side of CONTRACT §5. */
export function registerApiRoutes(app: FastifyInstance, store: Store, archive?: ArchiveReader): void {
  app.setErrorHandler(async (error, _request, reply) => {
    if (error instanceof InvalidQueryError)
      return reply.code(400).send(errorBody('invalid_query', error.message));
    throw error;
  });

  app.get('/predictions', async (request) =>
    predictionPageView(await store.listPredictions(parsePredictionQuery(request.query as QueryParams))),
  );

  // Counts for the CLI's "no match" line and dashboards: what is stored, whatever its state.
  app.get('/stats', async () => ({ predictions: await store.countPredictions() }));

  app.get<{ Params: { id: string } }>('/predictions/:id', async (request, reply) => {
    const record = await store.getPrediction(request.params.id);
    if (!record) return notFound(reply, `prediction "${request.params.id}"`);
    if (archive === undefined) return predictionView(record);
    const base = publicBase(request, archive.publicUrl);
    return { ...predictionView(record), archived_output: await archivedOutput(store.recover, record, base) };
  });

  app.get<{ Params: { id: string } }>('/predictions/:id/events', async (request, reply) => {
    const query = parseSeqQuery(request.query as QueryParams);
    const page = await store.listEvents(request.params.id, query);
    if (
      page.items.length === 0 &&
      query.after === undefined &&
      !(await store.getPrediction(request.params.id))
    ) {
      return notFound(reply, `prediction "${request.params.id}"`);
    }
    const last = page.items.at(-1);
    return {
      data: page.items.map(eventView),
      next_cursor: page.hasMore && last ? encodeSeqCursor(last.seq) : null,
    };
  });

  app.get<{ Params: { id: string } }>('/events/:id', async (request, reply) => {
    const record = await store.getEvent(request.params.id);
    return record ? eventDetailView(record) : notFound(reply, `event "${request.params.id}"`);
  });

  app.get('/rejections', async (request) => {
    const page = await store.listRejections(parseSeqQuery(request.query as QueryParams));
    const last = page.items.at(-1);
    return {
      data: page.items.map(rejectionView),
      next_cursor: page.hasMore && last ? encodeSeqCursor(last.seq) : null,
    };
  });
}
