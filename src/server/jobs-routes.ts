import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendError } from './send-error.js';
import { createTestMessage } from '../jobs/http-deliverer.js';
import type { Deliverer } from '../jobs/deliverer.js';
import {
  destinationDetailView,
  destinationView,
  messageDetailView,
  messagePageView,
} from '../jobs/job-views.js';
import { replay, type ReplayRequest } from '../jobs/replay.js';
import { MESSAGE_STATES, type ConsumerRecord, type JobStore, type MessageState } from '../store/job-types.js';
import type { TransitionLog } from '../store/transition-types.js';
import {
  InvalidQueryError,
  parseLimit,
  parseRfc3339Bound,
  parseSeqQuery,
  type QueryParams,
} from './api-query.js';

export interface JobsRoutesDeps {
  jobs: JobStore;
  /** The transitions log (replays read it). */
  log: TransitionLog | undefined;
  /** Tells the runner something changed (a retry, a replay, an enable). */
  wake?: () => void;
  /** The deliverer `POST /api/destinations/:name/test` sends through. */
  testDeliverer?: (destination: ConsumerRecord) => Deliverer;
  now?: () => number;
}

function notFound(reply: FastifyReply, what: string) {
  return sendError(reply, 'not_found', `No ${what}.`);
}

function oneParam(query: QueryParams, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidQueryError(`"${name}" may be given once.`);
  return value === undefined || value === '' ? undefined : value;
}

function parseState(query: QueryParams): MessageState | undefined {
  const state = oneParam(query, 'state');
  if (state === undefined) return undefined;
  if (!(MESSAGE_STATES as readonly string[]).includes(state)) {
    throw new InvalidQueryError(`"state" must be one of ${MESSAGE_STATES.join(', ')}; got "${state}".`);
  }
  return state as MessageState;
}

function stringList(body: Record<string, unknown>, name: string): string[] | undefined {
  const value = body[name];
  if (value === undefined || value === null) return undefined;
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value;
  if (!Array.isArray(list) || list.length === 0 || list.some((v) => typeof v !== 'string' || v === '')) {
    throw new InvalidQueryError(`"${name}" must be a non-empty list of strings.`);
  }
  return list as string[];
}

/** The body of `POST /api/replays` as a replay request; throws `InvalidQueryError` on a bad field. */
function parseReplayBody(raw: unknown): ReplayRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidQueryError('The body must be a JSON object naming a "destination".');
  }
  const body = raw as Record<string, unknown>;
  const known = new Set([
    'destination',
    'prediction_ids',
    'since',
    'until',
    'status',
    'model',
    'types',
    'dry_run',
  ]);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0) throw new InvalidQueryError(`Unknown field "${unknown[0]}".`);
  if (typeof body.destination !== 'string' || body.destination === '') {
    throw new InvalidQueryError('"destination" must name a destination.');
  }
  const request: ReplayRequest = { destination: body.destination };
  const ids = stringList(body, 'prediction_ids');
  if (ids !== undefined) request.predictionIds = ids;
  for (const bound of ['since', 'until'] as const) {
    const value = body[bound];
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string') throw new InvalidQueryError(`"${bound}" must be an RFC 3339 time.`);
    const ms = parseRfc3339Bound(value, bound);
    if (bound === 'since') request.sinceMs = ms;
    else request.untilMs = ms;
  }
  const statuses = stringList(body, 'status');
  if (statuses !== undefined) request.statuses = statuses;
  if (body.model !== undefined && body.model !== null && body.model !== '') {
    if (typeof body.model !== 'string') throw new InvalidQueryError('"model" must be a string.');
    request.model = body.model;
  }
  const types = stringList(body, 'types');
  if (types !== undefined) request.types = types;
  if (body.dry_run !== undefined && typeof body.dry_run !== 'boolean') {
    throw new InvalidQueryError('"dry_run" must be true or false.');
  }
  if (request.predictionIds === undefined && request.sinceMs === undefined && request.untilMs === undefined) {
    throw new InvalidQueryError('Name "prediction_ids", or a time window with "since" and/or "until".');
  }
  return request;
}

/** Destinations, messages and replays (CONTRACT §9), under the admin API's access rule. */
export function registerJobsRoutes(app: FastifyInstance, deps: JobsRoutesDeps): void {
  const { jobs } = deps;
  const now = deps.now ?? Date.now;

  app.get('/destinations', async () => {
    const consumers = await jobs.listConsumers('destination');
    const data = [];
    for (const consumer of consumers)
      data.push(destinationView(consumer, await jobs.consumerCounts(consumer.name)));
    return { data };
  });

  app.get<{ Params: { name: string } }>('/destinations/:name', async (request, reply) => {
    const name = request.params.name;
    const consumer = await jobs.getConsumer(name);
    if (consumer === undefined || consumer.kind !== 'destination')
      return notFound(reply, `destination "${name}"`);
    return destinationDetailView(consumer, await jobs.consumerCounts(name));
  });

  app.get('/messages', async (request) => {
    const query = request.query as QueryParams;
    const seq = parseSeqQuery(query);
    const state = parseState(query);
    const destination = oneParam(query, 'destination');
    const predictionId = oneParam(query, 'prediction_id');
    const page = await jobs.listMessages({
      limit: parseLimit(query),
      ...(seq.after === undefined ? {} : { after: seq.after }),
      ...(state === undefined ? {} : { state }),
      ...(destination === undefined ? {} : { consumer: destination }),
      ...(predictionId === undefined ? {} : { objectId: predictionId }),
    });
    return messagePageView(page);
  });

  app.get<{ Params: { id: string } }>('/messages/:id', async (request, reply) => {
    const message = await jobs.getMessage(request.params.id);
    return message ? messageDetailView(message) : notFound(reply, `message "${request.params.id}"`);
  });

  app.post<{ Params: { id: string } }>('/messages/:id/retry', async (request, reply) => {
    const result = await jobs.retryMessage(request.params.id, now());
    if (result === 'not_found') return notFound(reply, `message "${request.params.id}"`);
    if (result === 'not_dead') {
      return sendError(
        reply,
        'conflict',
        `Message "${request.params.id}" is not dead; only a dead message is retried.`,
      );
    }
    deps.wake?.();
    const message = await jobs.getMessage(request.params.id);
    return reply.code(202).send(message ? messageDetailView(message) : {});
  });

  app.post('/messages/retry-dead', async (request, reply) => {
    const raw = request.body ?? {};
    if (typeof raw !== 'object' || Array.isArray(raw)) {
      throw new InvalidQueryError('The body must be a JSON object (with an optional "destination").');
    }
    const body = raw as Record<string, unknown>;
    const unknown = Object.keys(body).filter((k) => k !== 'destination');
    if (unknown.length > 0) throw new InvalidQueryError(`Unknown field "${unknown[0]}".`);
    if (body.destination !== undefined && (typeof body.destination !== 'string' || body.destination === '')) {
      throw new InvalidQueryError('"destination" must name a destination.');
    }
    const count = await jobs.retryDead(body.destination, now());
    deps.wake?.();
    return reply.code(202).send({ count });
  });

  app.post('/replays', async (request, reply) => {
    const replayRequest = parseReplayBody(request.body);
    const dryRun = (request.body as { dry_run?: boolean }).dry_run === true;
    const consumer = await jobs.getConsumer(replayRequest.destination);
    if (consumer === undefined || consumer.kind !== 'destination') {
      return notFound(reply, `destination "${replayRequest.destination}"`);
    }
    if (deps.log === undefined) {
      return sendError(reply, 'storage_unavailable', 'The transitions log is not available.');
    }
    const count = await replay(deps.log, jobs, consumer, replayRequest, { nowMs: now(), dryRun });
    if (dryRun) return { count };
    deps.wake?.();
    return reply.code(202).send({ count });
  });

  app.post<{ Params: { name: string }; Querystring: { from?: string } }>(
    '/destinations/:name/enable',
    async (request, reply) => {
      const name = request.params.name;
      const consumer = await jobs.getConsumer(name);
      if (consumer === undefined || consumer.kind !== 'destination')
        return notFound(reply, `destination "${name}"`);
      const from = oneParam(request.query, 'from');
      if (from !== undefined && from !== 'now') throw new InvalidQueryError('"from" may only be "now".');
      let position: number | undefined;
      if (from === 'now') {
        if (deps.log === undefined) {
          return sendError(reply, 'storage_unavailable', 'The transitions log is not available.');
        }
        position = await deps.log.lastTransitionSeq();
      }
      await jobs.setConsumerEnabled(name, {
        enabled: true,
        nowMs: now(),
        ...(position === undefined ? {} : { position }),
      });
      deps.wake?.();
      return destinationView((await jobs.getConsumer(name))!, await jobs.consumerCounts(name));
    },
  );

  app.post<{ Params: { name: string } }>('/destinations/:name/disable', async (request, reply) => {
    const name = request.params.name;
    const consumer = await jobs.getConsumer(name);
    if (consumer === undefined || consumer.kind !== 'destination')
      return notFound(reply, `destination "${name}"`);
    await jobs.setConsumerEnabled(name, { enabled: false, reason: 'disabled by an operator', nowMs: now() });
    return destinationView((await jobs.getConsumer(name))!, await jobs.consumerCounts(name));
  });

  app.post<{ Params: { name: string } }>('/destinations/:name/test', async (request, reply) => {
    const name = request.params.name;
    const consumer = await jobs.getConsumer(name);
    if (consumer === undefined || consumer.kind !== 'destination')
      return notFound(reply, `destination "${name}"`);
    if (deps.testDeliverer === undefined) {
      return sendError(reply, 'storage_unavailable', 'Test messages cannot be sent from here.');
    }
    const result = await sendTestMessage(deps.testDeliverer(consumer), name, now());
    return result;
  });
}

/** One signed `inlet.test` message; answers what the destination said. */
export async function sendTestMessage(
  deliverer: Deliverer,
  destination: string,
  nowMs: number,
): Promise<Record<string, unknown>> {
  const message = createTestMessage(destination, nowMs);
  try {
    const result = await deliverer.deliver(message, AbortSignal.timeout(60_000));
    return {
      id: message.id,
      outcome: result.outcome,
      status: result.status ?? null,
      duration_ms: result.durationMs,
      error: result.outcome === 'retry' ? result.error : result.outcome === 'disable' ? result.reason : null,
    };
  } finally {
    await deliverer.close?.();
  }
}
