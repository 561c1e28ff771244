import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { discardBody } from './discard-body.js';
import { InflightLimitError } from './inflight-bytes.js';
import { INTERNAL_ERROR, sendError, sendRefusal, tooLargeMessage, unreadableMessage } from './send-error.js';

export interface ErrorHandlerDeps {
  maxBodyBytes: number;
  logger: Logger;
  /** The answer when request bodies in memory are at `--max-inflight-bytes`. */
  overloaded(request: FastifyRequest, reply: FastifyReply): FastifyReply;
}

/**
 * Every error a route or Fastify raises becomes one of the contract's answers (CONTRACT §7). The webhook
 * path answers its own (webhook-route.ts): nothing on it reaches this handler.
 */
export function createErrorHandler(deps: ErrorHandlerDeps) {
  const { maxBodyBytes } = deps;
  return async function errorHandler(
    error: FastifyError,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> {
    if (error instanceof InflightLimitError) return deps.overloaded(request, reply);
    if (error.code === 'FST_ERR_CTP_BODY_TOO_LARGE' || error.statusCode === 413) {
      // Read the rest before answering: a client still writing would otherwise see a reset, not the 413.
      await discardBody(request.raw, { maxBytes: 4 * maxBodyBytes, timeoutMs: 10_000, keepBytes: 0 });
      void reply.header('connection', 'close');
      return sendError(reply, 'payload_too_large', tooLargeMessage(maxBodyBytes));
    }
    if (error.statusCode === 415) {
      return sendError(reply, 'unsupported_media_type', error.message);
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Framework-level 4xx: a body that could not be read as sent (a lying Content-Length), a bad URL.
      return sendError(reply, 'bad_request', unreadableMessage(error.message));
    }
    deps.logger.error({ err: error, url: request.url }, 'request failed');
    return sendRefusal(reply, INTERNAL_ERROR);
  };
}
