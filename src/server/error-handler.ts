import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { REJECTION_BODY_BYTES } from '../ingest/accept.js';
import type { InletMetrics } from '../metrics/metrics.js';
import { discardBody } from './discard-body.js';
import { InflightLimitError } from './inflight-bytes.js';
import { sendError } from './send-error.js';
import type { WebhookIntake } from './webhook-route.js';

export interface ErrorHandlerDeps {
  maxBodyBytes: number;
  logger: Logger;
  metrics?: InletMetrics;
  intake: WebhookIntake;
  /** The answer when request bodies in memory are at `--max-inflight-bytes`. */
  overloaded(request: FastifyRequest, reply: FastifyReply): FastifyReply;
}

/** Every error a route or Fastify raises becomes one of the contract's answers (CONTRACT §7). */
export function createErrorHandler(deps: ErrorHandlerDeps) {
  const { maxBodyBytes, intake } = deps;
  return async function errorHandler(
    error: FastifyError,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    const onWebhook = intake.isWebhookPath(request.routeOptions.url);
    if (error instanceof InflightLimitError) return deps.overloaded(request, reply);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
      const message = `The body is larger than the limit of ${maxBodyBytes} bytes (--max-body).`;
      // Read the rest before answering: a client still writing would otherwise see a reset, not the 413.
      const body = await discardBody(request.raw, {
        maxBytes: 4 * maxBodyBytes,
        timeoutMs: 10_000,
        keepBytes: REJECTION_BODY_BYTES,
      });
      void reply.header('connection', 'close');
      if (onWebhook) return intake.refuse(request, reply, 'payload_too_large', message, body);
      return sendError(reply, 'payload_too_large', message);
    }
    if (error.statusCode === 415) {
      return sendError(reply, 'unsupported_media_type', error.message);
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Framework-level 4xx: a body that could not be read as sent (a lying Content-Length), a bad URL.
      const message = `The request could not be read: ${error.message}`;
      if (onWebhook) return intake.refuse(request, reply, 'bad_request', message);
      return sendError(reply, 'bad_request', message);
    }
    deps.logger.error({ err: error, url: request.url }, 'request failed');
    // A bug, not the store nor the request: 500, which Replicate retries like any 5xx; nothing was stored.
    if (onWebhook) deps.metrics?.delivery('unavailable', 'internal_error', reply.elapsedTime / 1000);
    return sendError(reply, 'internal_error', 'Inlet failed to handle this request; the log says why.');
  };
}
