import type { FastifyInstance, FastifyReply } from 'fastify';
import { archivedOutput, publicBase, type ArchiveReader } from '../archive/archive-views.js';
import { sendError } from './send-error.js';
import { jsonText } from '../json-text.js';
import type { ReadStore, RejectionRecord, StoreParts } from '../store/types.js';
import {
  eventDetailView,
  eventView,
  isoTime,
  predictionPageView,
  predictionView,
  rejectionView,
} from '../views.js';
import { encodeSeqCursor } from '../store/cursor.js';
import {
  InvalidQueryError,
  type QueryParams,
  parsePredictionQuery,
  parseSeqQuery,
  parseStatsMinutes,
} from './api-query.js';

const JSON_TYPE = 'application/json; charset=utf-8';
const MINUTE_MS = 60_000;

function notFound(reply: FastifyReply, what: string) {
  return sendError(reply, 'not_found', `No ${what}.`);
}

/**
 * A rejection in a list: a summary whose body is at most its first 64 KiB (the store cuts it), saying so
 * with `body_truncated` and the whole size in `body_bytes`; `GET /api/rejections/:id` has all of it.
 */
function rejectionListItem(record: RejectionRecord): Record<string, unknown> {
  if (record.bodyBytes <= record.body.length) return rejectionView(record);
  return {
    ...rejectionView({ ...record, body: withoutCutCharacter(record.body) }),
    body_truncated: true,
    body_bytes: record.bodyBytes,
  };
}

/** Drops an incomplete UTF-8 sequence at the end of a cut body, so a cut text body stays valid text. */
function withoutCutCharacter(body: Buffer): Buffer {
  let continuation = 0;
  while (
    continuation < 3 &&
    continuation < body.length &&
    (body[body.length - 1 - continuation]! & 0xc0) === 0x80
  )
    continuation++;
  const lead = body[body.length - 1 - continuation];
  if (lead === undefined || lead < 0xc0) return body;
  const length = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
  return length > continuation + 1 ? body.subarray(0, body.length - 1 - continuation) : body;
}

/** The read side of CONTRACT §5. */
export function registerApiRoutes(
  app: FastifyInstance,
  store: ReadStore & Pick<StoreParts, 'recover' | 'transitions'>,
  archive?: ArchiveReader,
  now: () => number = Date.now,
): void {
  app.setErrorHandler(async (error, _request, reply) => {
    if (error instanceof InvalidQueryError) return sendError(reply, 'invalid_query', error.message);
    throw error;
  });

  app.get('/predictions', async (request) =>
    predictionPageView(await store.listPredictions(parsePredictionQuery(request.query as QueryParams))),
  );

  // Counts for the CLI's "no match" line and dashboards: what is stored, whatever its state.
  app.get('/stats', async () => ({ predictions: await store.countPredictions() }));

  // The dashboard's chart: every minute of the window, the current one last, empty minutes as zeros.
  app.get('/stats/deliveries', async (request) => {
    const minutes = parseStatsMinutes(request.query as QueryParams);
    const untilMs = (Math.floor(now() / MINUTE_MS) + 1) * MINUTE_MS;
    const sinceMs = untilMs - minutes * MINUTE_MS;
    const found = new Map(
      (await store.deliveriesPerMinute(sinceMs, untilMs)).map((entry) => [entry.minuteMs, entry]),
    );
    const data = [];
    for (let minuteMs = sinceMs; minuteMs < untilMs; minuteMs += MINUTE_MS) {
      const entry = found.get(minuteMs);
      data.push({
        minute: new Date(minuteMs).toISOString(),
        accepted: entry?.accepted ?? 0,
        duplicate: entry?.duplicate ?? 0,
        rejected: entry?.rejected ?? 0,
      });
    }
    return { since: new Date(sinceMs).toISOString(), until: new Date(untilMs).toISOString(), data };
  });

  app.get<{ Params: { id: string } }>('/predictions/:id', async (request, reply) => {
    const record = await store.getPrediction(request.params.id);
    if (!record) return notFound(reply, `prediction "${request.params.id}"`);
    // The stored body may be nested deeper than JSON.stringify (Fastify's serializer) can write.
    void reply.type(JSON_TYPE).serializer(jsonText);
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

  // What changed, once (CONTRACT §8), for one prediction: the dashboard's page shows it beside the events.
  app.get<{ Params: { id: string } }>('/predictions/:id/transitions', async (request, reply) => {
    const query = parseSeqQuery(request.query as QueryParams);
    const rows = await store.transitions.listTransitions({
      afterSeq: query.after ?? 0,
      limit: query.limit + 1,
      objectIds: [request.params.id],
    });
    if (rows.length === 0 && query.after === undefined && !(await store.getPrediction(request.params.id))) {
      return notFound(reply, `prediction "${request.params.id}"`);
    }
    const items = rows.slice(0, query.limit);
    const last = items.at(-1);
    return {
      data: items.map((t) => ({
        id: t.id,
        type: t.type,
        status: t.status,
        recorded_at: isoTime(t.recordedAtMs),
        event_id: t.eventKey,
      })),
      next_cursor: rows.length > query.limit && last ? encodeSeqCursor(last.seq) : null,
    };
  });

  app.get<{ Params: { id: string } }>('/events/:id', async (request, reply) => {
    const record = await store.getEvent(request.params.id);
    if (!record) return notFound(reply, `event "${request.params.id}"`);
    void reply.type(JSON_TYPE).serializer(jsonText);
    return eventDetailView(record);
  });

  app.get('/rejections', async (request) => {
    const page = await store.listRejections(parseSeqQuery(request.query as QueryParams));
    const last = page.items.at(-1);
    return {
      data: page.items.map(rejectionListItem),
      next_cursor: page.hasMore && last ? encodeSeqCursor(last.seq) : null,
    };
  });

  app.get<{ Params: { id: string } }>('/rejections/:id', async (request, reply) => {
    const record = await store.getRejection(request.params.id);
    return record ? rejectionView(record) : notFound(reply, `rejection "${request.params.id}"`);
  });
}
