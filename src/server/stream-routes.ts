import { createHash } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sendError } from './send-error.js';
import { consumerWants } from '../jobs/consumer.js';
import { jsonText } from '../json-text.js';
import type { ConsumerRecord, JobStore } from '../store/job-types.js';
import type { TransitionLog, TransitionRecord } from '../store/transition-types.js';
import { transitionDataView } from '../views.js';
import { InvalidQueryError, type QueryParams } from './api-query.js';

/**
 * `GET /api/stream` (Server-Sent Events of transitions) and the positions of `inlet listen` consumers.
 *
 * A stream reads the transitions log from a position: after `Last-Event-ID` when given, else where the
 * named listen consumer last acknowledged (`consumer=NAME`), else the end of the log (now). It wakes on
 * this process's commits and other instances' (PostgreSQL `NOTIFY`), and polls as a fallback.
 */
export interface StreamRoutesDeps {
  log: TransitionLog;
  jobs: JobStore;
  /** Calls `wake` when transitions were appended (here or, with PostgreSQL, by another instance). */
  onTransitions: (wake: () => void) => () => void;
  /** A listen consumer not seen for this long is dropped (`INLET_LISTEN_EXPIRY`). */
  listenExpiryMs: number;
  /** Fallback poll while caught up (a missed wake-up costs at most this). */
  pollIntervalMs?: number;
  /** A comment line this often keeps proxies from closing a quiet stream. */
  heartbeatMs?: number;
  now?: () => number;
}

const DEFAULT_STREAM_POLL_MS = 1_000;
const DEFAULT_STREAM_HEARTBEAT_MS = 15_000;
/** Transitions read per query while catching up. */
const STREAM_PAGE = 200;
/** A connected listen consumer's last-seen time is refreshed this often (so it never expires while connected). */
const TOUCH_INTERVAL_MS = 3_600_000;
/** The consumer name of `inlet listen --name NAME`: its own namespace, so it can never take a destination's row. */
const LISTEN_PREFIX = 'listen:';
const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function oneParam(query: QueryParams, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidQueryError(`"${name}" may be given once.`);
  return value === undefined || value === '' ? undefined : value;
}

function listenName(name: string): string {
  if (!NAME_PATTERN.test(name)) {
    throw new InvalidQueryError(
      `A listener name is 1–100 letters, digits, ".", "_" or "-", starting with a letter or digit; got "${name}".`,
    );
  }
  return `${LISTEN_PREFIX}${name}`;
}

function parseEvents(query: QueryParams): string[] {
  const text = oneParam(query, 'events');
  if (text === undefined) return ['*'];
  const events = text.split(',').map((e) => e.trim());
  if (events.some((e) => !/^(\*|[a-z]+\.(\*|[a-z]+))$/.test(e))) {
    throw new InvalidQueryError(
      `"events" is a comma list of transition types (prediction.completed), patterns (prediction.*) or *; got "${text}".`,
    );
  }
  return events;
}

/** One transition as the stream's `data:` line carries it (and `inlet listen` reads it). */
function streamTransitionView(record: TransitionRecord, withRawBody: boolean): Record<string, unknown> {
  const view: Record<string, unknown> = {
    id: record.id,
    type: record.type,
    object_id: record.objectId,
    model: record.model,
    status: record.status,
    event_id: record.eventKey,
    recorded_at: new Date(record.recordedAtMs).toISOString(),
    data: transitionDataView(record),
  };
  // The delivery's own bytes, for a forwarder that must hand a local app exactly what Replicate sent.
  if (withRawBody) view.raw_body = record.body.toString('utf8');
  return view;
}

/** Resolves when the response can take more (or is gone), leaving no listener behind. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.once('drain', done).once('close', done);
  });
}

/** An SSE frame; `data` is one line (JSON text never holds a raw newline). */
function frame(record: TransitionRecord, data: string): string {
  return `id: ${record.id}\nevent: ${record.type}\ndata: ${data}\n\n`;
}

function listenView(record: ConsumerRecord, lastSeq: number): Record<string, unknown> {
  return {
    name: record.name.slice(LISTEN_PREFIX.length),
    events: record.config.events ?? ['*'],
    position: record.position,
    behind: Math.max(0, lastSeq - record.position),
    created_at: new Date(record.createdAtMs).toISOString(),
    last_seen_at: new Date(record.updatedAtMs).toISOString(),
  };
}

export function registerStreamRoutes(app: FastifyInstance, deps: StreamRoutesDeps): void {
  const now = deps.now ?? Date.now;
  const pollMs = deps.pollIntervalMs ?? DEFAULT_STREAM_POLL_MS;
  const heartbeatMs = deps.heartbeatMs ?? DEFAULT_STREAM_HEARTBEAT_MS;
  const open = new Set<() => void>();

  // Streams never end on their own: closing ends them first, so the connection drain need not wait.
  app.addHook('preClose', async () => {
    for (const end of open) end();
  });

  /** Drops listen consumers not seen within the expiry; answers how many. */
  async function dropExpired(): Promise<number> {
    const cutoff = now() - deps.listenExpiryMs;
    let dropped = 0;
    for (const c of await deps.jobs.listConsumers('listen')) {
      if (c.updatedAtMs < cutoff && (await deps.jobs.deleteConsumer(c.name))) dropped++;
    }
    return dropped;
  }

  async function touch(name: string, events: readonly string[]): Promise<ConsumerRecord> {
    const existing = await deps.jobs.getConsumer(name);
    if (existing !== undefined && existing.kind !== 'listen') {
      throw new InvalidQueryError(`"${name}" is not a listen consumer.`);
    }
    const config = { events };
    return deps.jobs.upsertConsumer({
      name,
      kind: 'listen',
      config,
      configHash: createHash('sha256').update(JSON.stringify(config)).digest('hex'),
      startPosition: await deps.log.lastTransitionSeq(),
      nowMs: now(),
    });
  }

  async function seqOf(id: string): Promise<number> {
    const transition = await deps.log.getTransition(id);
    if (transition === undefined) {
      throw new InvalidQueryError(`No transition "${id}" (pruned, or from another database).`);
    }
    return transition.seq;
  }

  app.get('/stream', async (request: FastifyRequest, reply: FastifyReply) => {
    const query = request.query as QueryParams;
    const events = parseEvents(query);
    const raw = oneParam(query, 'raw') === '1';
    const name = oneParam(query, 'consumer');
    const lastEventId = request.headers['last-event-id'] ?? oneParam(query, 'last_event_id');
    if (Array.isArray(lastEventId)) throw new InvalidQueryError('"Last-Event-ID" may be given once.');
    const consumer = name === undefined ? undefined : listenName(name);

    let position: number;
    if (consumer !== undefined) {
      await dropExpired();
      const record = await touch(consumer, events);
      position = lastEventId === undefined || lastEventId === '' ? record.position : await seqOf(lastEventId);
    } else {
      position =
        lastEventId === undefined || lastEventId === ''
          ? await deps.log.lastTransitionSeq()
          : await seqOf(lastEventId);
    }

    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    // Tells a reconnecting EventSource to wait a second, and the client the stream is live.
    res.write(`retry: 1000\n: inlet stream from position ${position}\n\n`);

    let closed = false;
    let wakeUp: (() => void) | undefined;
    const wake = () => {
      const resolve = wakeUp;
      wakeUp = undefined;
      resolve?.();
    };
    const end = () => {
      if (closed) return;
      closed = true;
      wake();
      res.end();
    };
    open.add(end);
    res.once('close', () => {
      closed = true;
      wake();
    });
    const unsubscribe = deps.onTransitions(wake);
    const heartbeat = setInterval(() => {
      if (!closed) res.write(': keep-alive\n\n');
    }, heartbeatMs);
    heartbeat.unref();
    let touchedAt = now();

    try {
      while (!closed) {
        const batch = await deps.log.listTransitions({ afterSeq: position, limit: STREAM_PAGE });
        for (const transition of batch) {
          if (closed) break;
          position = transition.seq;
          if (!consumerWants({ events }, transition)) continue;
          const ok = res.write(frame(transition, jsonText(streamTransitionView(transition, raw))));
          if (!ok) await drained(res);
        }
        if (closed || batch.length === STREAM_PAGE) continue;
        if (consumer !== undefined && now() - touchedAt >= TOUCH_INTERVAL_MS) {
          touchedAt = now();
          await touch(consumer, events);
        }
        await new Promise<void>((resolve) => {
          wakeUp = resolve;
          setTimeout(wake, pollMs).unref();
        });
      }
    } catch (error) {
      request.log.warn({ err: (error as Error).message }, 'live stream ended by an error');
    } finally {
      clearInterval(heartbeat);
      unsubscribe();
      open.delete(end);
      if (!res.writableEnded) res.end();
    }
  });

  // What `inlet listen` has handled: the stream of a reconnecting listener starts after it.
  app.post<{ Params: { name: string } }>('/listeners/:name/ack', async (request, reply) => {
    const consumer = listenName(request.params.name);
    const body = request.body as Record<string, unknown> | null;
    const id = body?.last_event_id;
    if (typeof id !== 'string' || id === '') {
      throw new InvalidQueryError('The body must be {"last_event_id": "<transition id>"}.');
    }
    const seq = await seqOf(id);
    // Another acknowledgement of the same listener may move it between the read and the write: read again.
    for (let tries = 0; tries < 5; tries++) {
      const record = await deps.jobs.getConsumer(consumer);
      if (record === undefined || record.kind !== 'listen') {
        return sendError(reply, 'not_found', `No listener "${request.params.name}".`);
      }
      // Positions only move forward; an acknowledgement that arrives late changes nothing.
      if (seq <= record.position) return listenView(record, await deps.log.lastTransitionSeq());
      if (await deps.jobs.fanOut(consumer, record.position, seq, [], now())) {
        const moved = (await deps.jobs.getConsumer(consumer)) ?? record;
        return listenView(moved, await deps.log.lastTransitionSeq());
      }
    }
    return sendError(
      reply,
      'conflict',
      `The position of listener "${request.params.name}" keeps changing; retry.`,
    );
  });

  app.get('/listeners', async () => {
    await dropExpired();
    const last = await deps.log.lastTransitionSeq();
    return { data: (await deps.jobs.listConsumers('listen')).map((c) => listenView(c, last)) };
  });

  app.delete<{ Params: { name: string } }>('/listeners/:name', async (request, reply) => {
    if (!(await deps.jobs.deleteConsumer(listenName(request.params.name)))) {
      return sendError(reply, 'not_found', `No listener "${request.params.name}".`);
    }
    return reply.code(204).send();
  });
}
