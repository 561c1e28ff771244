import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ErrorCode } from '../errors.js';
import {
  type Ingest,
  REJECTION_BODY_BYTES,
  type WebhookAnswer,
  type WebhookRequest,
} from '../ingest/accept.js';
import type { InletMetrics } from '../metrics/metrics.js';
import { createAdminAccessHook } from './admin-access.js';
import { discardBody } from './discard-body.js';
import { meterBody, readBodyWithin, type RequestReservation } from './inflight-bytes.js';
import { webhookPathHint } from './path-hint.js';
import { sendError } from './send-error.js';
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
}

/** The HTTP side of ingest: what the webhook route, the not-found handler and the error handler share. */
export interface WebhookIntake {
  /** The webhook path, and the same with one trailing slash. */
  readonly paths: readonly string[];
  readonly isWebhookPath: (path: string | undefined) => boolean;
  /** Everything ingest needs of a request but its body. */
  readonly requestMeta: (request: FastifyRequest) => Omit<WebhookRequest, 'body'>;
  /** Sends ingest's answer, counted in the metrics. */
  readonly answer: (reply: FastifyReply, answer: WebhookAnswer) => FastifyReply;
  /** Refuses a delivery before its body was parsed (kept in the rejections log), and answers. */
  readonly refuse: (
    request: FastifyRequest,
    reply: FastifyReply,
    code: ErrorCode,
    message: string,
    body?: Buffer,
  ) => FastifyReply;
  /** The not-found handler: a POST to the wrong path is kept in the rejections log with a hint. */
  readonly notFound: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
  /** Anything but POST on the webhook path: 405, its body read first. */
  readonly rejectMethod: (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;
}

export function createWebhookIntake(options: WebhookIntakeOptions, deps: WebhookIntakeDeps): WebhookIntake {
  const requestMeta = (request: FastifyRequest) => ({
    headers: request.raw.headers,
    remoteAddress:
      options.trustProxy?.clientAddress(
        request.socket.remoteAddress ?? '',
        request.raw.headers['x-forwarded-for'],
      ) ??
      request.socket.remoteAddress ??
      '',
    receivedAtMs: Date.now(),
  });

  // The webhook path is also served with one trailing slash: Replicate never follows a redirect, so a
  // URL pasted with a slash must not lose deliveries.
  const webhookPaths = options.webhookPath.endsWith('/')
    ? [options.webhookPath]
    : [options.webhookPath, `${options.webhookPath}/`];
  const isWebhookPath = (path: string | undefined) => path !== undefined && webhookPaths.includes(path);

  const answer = (reply: FastifyReply, answer: WebhookAnswer): FastifyReply => {
    deps.metrics?.delivery(answer.outcome, answer.code, reply.elapsedTime / 1000);
    return reply
      .code(answer.status)
      .headers(answer.headers ?? {})
      .send(answer.body);
  };
  const refuse = (
    request: FastifyRequest,
    reply: FastifyReply,
    code: ErrorCode,
    message: string,
    body?: Buffer,
  ): FastifyReply => {
    const meta = requestMeta(request);
    return answer(reply, deps.ingest.reject(body === undefined ? meta : { ...meta, body }, code, message));
  };

  const adminAccess = createAdminAccessHook({ adminToken: options.adminToken });
  async function notFound(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const path = request.url.split('?')[0] ?? '';
    if (isWebhookPath(path)) return rejectMethod(request, reply);
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
        : await discardBody(request.raw, {
            maxBytes: 4 * options.maxBodyBytes,
            timeoutMs: 10_000,
            keepBytes: REJECTION_BODY_BYTES,
          });
      const message = `Nothing is served at POST ${path}. ${webhookPathHint(path, options.webhookPath)}`;
      return refuse(request, reply, 'not_found', message, body);
    }
    return sendError(reply, 'not_found', `Nothing is served at ${request.method} ${path}.`);
  }

  async function rejectMethod(request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const message = `Use POST to deliver webhooks here; got ${request.method}.`;
    const body = await discardBody(request.raw, {
      maxBytes: 4 * options.maxBodyBytes,
      timeoutMs: 10_000,
      keepBytes: REJECTION_BODY_BYTES,
    });
    return refuse(request, reply, 'method_not_allowed', message, body);
  }

  return { paths: webhookPaths, isWebhookPath, requestMeta, answer, refuse, notFound, rejectMethod };
}

/**
 * The webhook, on the raw bytes: its own scope so no JSON parser ever touches the body. Any other POST
 * is read raw there too and handed to the not-found handler.
 */
export function registerWebhookRoute(
  app: FastifyInstance,
  intake: WebhookIntake,
  deps: {
    ingest: Ingest;
    maxBodyBytes: number;
    /** The in-flight bytes reservation made for this request (`--max-inflight-bytes`). */
    reservationFor(raw: IncomingMessage): RequestReservation;
  },
): void {
  const readBody = (raw: IncomingMessage, payload: Readable) => {
    const declared = raw.headers['content-length'];
    return readBodyWithin(payload, deps.reservationFor(raw), {
      contentLength: declared === undefined ? undefined : Number(declared),
      maxBytes: deps.maxBodyBytes,
    });
  };
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', async (request: FastifyRequest, payload: IncomingMessage) =>
      readBody(request.raw, payload),
    );
    // Any other POST lands here rather than in the not-found handler, so its body is read raw too
    // (never parsed as JSON first) and kept in the rejections log.
    scope.post('/*', (request, reply) => intake.notFound(request, reply));
    for (const path of intake.paths)
      scope.all(path, {
        // The whole delivery is read and answered here, before Fastify's body parsing: its media-type
        // check would answer 415 to a malformed Content-Type first, and ingest judges the content type
        // itself (CONTRACT §3: size first, an empty header counts as absent).
        onRequest: async (request, reply) => {
          if (request.method !== 'POST') return intake.rejectMethod(request, reply);
          // No preParsing hook runs before this one: a body of unknown length is metered here.
          const raw = request.raw;
          const length = raw.headers['content-length'];
          const body = await readBody(
            raw,
            length === undefined ? meterBody(raw, deps.reservationFor(raw)) : raw,
          );
          return intake.answer(reply, await deps.ingest.accept({ ...intake.requestMeta(request), body }));
        },
        // Never reached: onRequest answers every request on the webhook path.
        handler: async (_request, reply) => reply,
      });
  });
}
