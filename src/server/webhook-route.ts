import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { type ErrorCode, ERROR_STATUS, errorBody } from '../errors.js';
import {
  type Ingest,
  REJECTION_BODY_BYTES,
  type WebhookAnswer,
  type WebhookRequest,
} from '../ingest/accept.js';
import type { InletMetrics } from '../metrics/metrics.js';
import { createAdminAccessHook } from './admin-access.js';
import { discardBody } from './discard-body.js';
import {
  InflightLimitError,
  meterBody,
  readBodyWithin,
  type InflightBytes,
  type RequestReservation,
} from './inflight-bytes.js';
import { webhookPathHint } from './path-hint.js';
import {
  INTERNAL_ERROR,
  OVERLOADED,
  type Refusal,
  sendError,
  SHUTTING_DOWN,
  tooLargeMessage,
  unreadableMessage,
} from './send-error.js';
import type { TrustedProxies } from './trusted-proxies.js';

export interface WebhookIntakeOptions {
  webhookPath: string;
  maxBodyBytes: number;
  adminToken: string | undefined;
  trustProxy?: TrustedProxies;
}

export interface WebhookIntakeDeps {
  ingest: Ingest;
  metrics?: InletMetrics;
  logger: Logger;
  /** The budget of request bodies held in memory (`--max-inflight-bytes`). */
  inflight: InflightBytes;
  /** True once the server is closing: webhooks are answered 503 `shutting_down`. */
  closing(): boolean;
  /**
   * Counts and logs a request refused because request bodies in memory are at the limit, and lets its
   * connection close without a reset once answered (`closeGently`).
   */
  noteOverload(raw: IncomingMessage, res: ServerResponse): void;
}

/**
 * Handles one request on the webhook path, whatever its method, from its first byte to its answer.
 * Written against `node:http` alone: the server calls it before Fastify sees the request (the route
 * registered in Fastify calls it too, for `inject()` and anything routed there).
 */
export type WebhookHandler = (raw: IncomingMessage, res: ServerResponse) => void;

/** The HTTP side of ingest: the webhook handler, and what the not-found handler shares with it. */
export interface WebhookIntake {
  /** The webhook path, and the same with one trailing slash. */
  readonly paths: readonly string[];
  /** Whether a request URL (query string and all) is on the webhook path. */
  readonly isWebhookUrl: (url: string | undefined) => boolean;
  readonly handle: WebhookHandler;
  /** The not-found handler: a POST to the wrong path is kept in the rejections log with a hint. */
  readonly notFound: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
}

/** One JSON answer, in one write: the headers Fastify would send for it, and no more. */
export function writeJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers?: Readonly<Record<string, string>>,
): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function createWebhookIntake(options: WebhookIntakeOptions, deps: WebhookIntakeDeps): WebhookIntake {
  const { ingest } = deps;
  const { maxBodyBytes } = options;
  const requestMeta = (raw: IncomingMessage): Omit<WebhookRequest, 'body'> => ({
    headers: raw.headers,
    remoteAddress:
      options.trustProxy?.clientAddress(raw.socket.remoteAddress ?? '', raw.headers['x-forwarded-for']) ??
      raw.socket.remoteAddress ??
      '',
    receivedAtMs: Date.now(),
  });

  // The webhook path is also served with one trailing slash: Replicate never follows a redirect, so a
  // URL pasted with a slash must not lose deliveries.
  const webhookPaths = options.webhookPath.endsWith('/')
    ? [options.webhookPath]
    : [options.webhookPath, `${options.webhookPath}/`];
  const isWebhookPath = (path: string | undefined) => path !== undefined && webhookPaths.includes(path);
  const isWebhookUrl = (url: string | undefined) => {
    if (url === undefined) return false;
    const query = url.indexOf('?');
    return isWebhookPath(query < 0 ? url : url.slice(0, query));
  };

  /** Sends an answer, counted in the metrics; while closing, on a connection that then closes. */
  const send = (
    res: ServerResponse,
    startedMs: number,
    answer: Pick<WebhookAnswer, 'status' | 'outcome' | 'code' | 'body' | 'headers'>,
    extraHeaders?: Readonly<Record<string, string>>,
  ): void => {
    deps.metrics?.delivery(answer.outcome, answer.code, (performance.now() - startedMs) / 1000);
    const closing = deps.closing();
    const headers =
      answer.headers === undefined && extraHeaders === undefined && !closing
        ? undefined
        : { ...answer.headers, ...extraHeaders, ...(closing ? { connection: 'close' } : {}) };
    writeJson(res, answer.status, answer.body, headers);
  };
  /** An answer that is not the delivery's fault (503, 500): counted, not kept in the rejections log. */
  const unavailable = (res: ServerResponse, startedMs: number, refusal: Refusal) =>
    send(res, startedMs, {
      status: ERROR_STATUS[refusal.code],
      outcome: 'unavailable',
      code: refusal.code,
      body: errorBody(refusal.code, refusal.message),
      ...(refusal.headers === undefined ? {} : { headers: { ...refusal.headers } }),
    });
  /** Refuses a delivery before its body was parsed (kept in the rejections log), and answers. */
  const refuse = (
    raw: IncomingMessage,
    res: ServerResponse,
    startedMs: number,
    code: ErrorCode,
    message: string,
    body?: Buffer,
    extraHeaders?: Readonly<Record<string, string>>,
  ) => {
    const meta = requestMeta(raw);
    send(
      res,
      startedMs,
      ingest.reject(body === undefined ? meta : { ...meta, body }, code, message),
      extraHeaders,
    );
  };
  const rest = (raw: IncomingMessage, keepBytes: number) =>
    discardBody(raw, { maxBytes: 4 * maxBodyBytes, timeoutMs: 10_000, keepBytes });

  async function handleRequest(raw: IncomingMessage, res: ServerResponse, startedMs: number): Promise<void> {
    if (deps.closing()) {
      // Read the body first: closing a connection with unread bytes resets it, answer and all.
      await discardBody(raw, { maxBytes: 4 * maxBodyBytes, timeoutMs: 5_000, keepBytes: 0 });
      return unavailable(res, startedMs, SHUTTING_DOWN);
    }
    if (raw.method !== 'POST') {
      const message = `Use POST to deliver webhooks here; got ${raw.method ?? ''}.`;
      return refuse(
        raw,
        res,
        startedMs,
        'method_not_allowed',
        message,
        await rest(raw, REJECTION_BODY_BYTES),
      );
    }

    // Bodies are read whole before a signature can be checked, so the body's Content-Length is taken
    // from the in-memory budget before a byte of it is read.
    const reservation = deps.inflight.openRequest(raw.headers, res, maxBodyBytes);
    if (reservation === undefined) return overloaded(raw, res, startedMs);
    const declared = raw.headers['content-length'];
    const length = declared === undefined ? undefined : Number(declared);

    let body: Buffer;
    try {
      body = await readBodyWithin(length === undefined ? meterBody(raw, reservation) : raw, reservation, {
        contentLength: length,
        maxBytes: maxBodyBytes,
      });
    } catch (error) {
      return bodyUnread(raw, res, startedMs, error);
    }
    send(res, startedMs, await ingest.accept({ ...requestMeta(raw), body }));
  }

  /** Answered at once, before the body is read, so a sender that stalls gets its answer now. */
  function overloaded(raw: IncomingMessage, res: ServerResponse, startedMs: number): void {
    deps.noteOverload(raw, res);
    unavailable(res, startedMs, OVERLOADED);
  }

  async function bodyUnread(
    raw: IncomingMessage,
    res: ServerResponse,
    startedMs: number,
    error: unknown,
  ): Promise<void> {
    if (error instanceof InflightLimitError) return overloaded(raw, res, startedMs);
    const status = (error as { statusCode?: unknown }).statusCode;
    if (status === 413) {
      // Read the rest before answering: a client still writing would otherwise see a reset, not the 413.
      const kept = await rest(raw, REJECTION_BODY_BYTES);
      const message = tooLargeMessage(maxBodyBytes);
      return refuse(raw, res, startedMs, 'payload_too_large', message, kept, { connection: 'close' });
    }
    if (status === 400) {
      return refuse(raw, res, startedMs, 'bad_request', unreadableMessage((error as Error).message));
    }
    throw error;
  }

  const handle: WebhookHandler = (raw, res) => {
    const startedMs = performance.now();
    handleRequest(raw, res, startedMs).catch((error: unknown) => {
      deps.logger.error({ err: error, url: raw.url }, 'request failed');
      if (res.headersSent) return void res.destroy();
      unavailable(res, startedMs, INTERNAL_ERROR);
    });
  };

  const adminAccess = createAdminAccessHook({ adminToken: options.adminToken });
  async function notFound(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = request.url.split('?')[0] ?? '';
    if (isWebhookPath(path)) {
      // A method Fastify does not route (the webhook route takes all it knows): answered the same way.
      void reply.hijack();
      handle(request.raw, reply.raw);
      return reply;
    }
    const isApi = path === '/api' || path.startsWith('/api/');
    if (isApi) {
      // Unknown API paths answer to the same access rule as the known ones.
      await adminAccess(request, reply);
      if (reply.sent) return reply;
    } else if (request.method === 'POST') {
      // A delivery sent to the wrong URL is the most common way deliveries vanish: keep it in the
      // rejections log, with a hint, like any other refused delivery.
      const body = Buffer.isBuffer(request.body)
        ? Buffer.from(request.body.subarray(0, REJECTION_BODY_BYTES))
        : await rest(request.raw, REJECTION_BODY_BYTES);
      const message = `Nothing is served at POST ${path}. ${webhookPathHint(path, options.webhookPath)}`;
      const answer = ingest.reject({ ...requestMeta(request.raw), body }, 'not_found', message);
      deps.metrics?.delivery(answer.outcome, answer.code, reply.elapsedTime / 1000);
      return reply
        .code(answer.status)
        .headers(answer.headers ?? {})
        .send(answer.body);
    }
    return sendError(reply, 'not_found', `Nothing is served at ${request.method} ${path}.`);
  }

  return { paths: webhookPaths, isWebhookUrl, handle, notFound };
}

/**
 * The webhook path in Fastify, for `inject()` and any request that reaches Fastify first: handed whole
 * to the intake's handler. Any other POST is read raw here (never parsed as JSON first) and handed to
 * the not-found handler, which keeps it in the rejections log.
 */
export function registerWebhookRoute(
  app: FastifyInstance,
  intake: WebhookIntake,
  deps: {
    maxBodyBytes: number;
    /** The in-flight bytes reservation made for this request (`--max-inflight-bytes`). */
    reservationFor(raw: IncomingMessage): RequestReservation;
  },
): void {
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', async (request: FastifyRequest, payload: IncomingMessage) => {
      const declared = request.raw.headers['content-length'];
      return readBodyWithin(payload, deps.reservationFor(request.raw), {
        contentLength: declared === undefined ? undefined : Number(declared),
        maxBytes: deps.maxBodyBytes,
      });
    });
    scope.post('/*', (request, reply) => intake.notFound(request, reply));
    for (const path of intake.paths)
      scope.all(path, {
        // Taken before Fastify's body parsing: its media-type check would answer 415 to a malformed
        // Content-Type first, and ingest judges the content type itself (size first, an empty header
        // counts as absent).
        onRequest: async (request, reply) => {
          void reply.hijack();
          intake.handle(request.raw, reply.raw);
        },
        // Never reached: onRequest takes every request on the webhook path.
        handler: async (_request, reply) => reply,
      });
  });
}
