import type { FastifyReply } from 'fastify';
import { type ErrorCode, ERROR_STATUS, errorBody } from '../errors.js';

/** Answers with the one error shape, the status read from ERROR_STATUS (CONTRACT §7). */
export function sendError(
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
): FastifyReply {
  if (headers !== undefined) void reply.headers(headers);
  return reply.code(ERROR_STATUS[code]).send(errorBody(code, message));
}

/** An answer given alike on the webhook path (node:http) and on Fastify's routes: one wording. */
export interface Refusal {
  readonly code: 'shutting_down' | 'storage_unavailable' | 'internal_error';
  readonly message: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export const SHUTTING_DOWN: Refusal = {
  code: 'shutting_down',
  message: 'Inlet is shutting down; retry in a moment.',
  headers: { 'retry-after': '2' },
};

/** Request bodies in memory at `--max-inflight-bytes`: answered before the body is read, so the connection closes. */
export const OVERLOADED: Refusal = {
  code: 'storage_unavailable',
  message:
    'Inlet holds as many request bodies in memory as it allows (--max-inflight-bytes); retry in a moment.',
  headers: { 'retry-after': '2', connection: 'close' },
};

/** A bug, not the store nor the request: 500, which Replicate retries like any 5xx; nothing was stored. */
export const INTERNAL_ERROR: Refusal = {
  code: 'internal_error',
  message: 'Inlet failed to handle this request; the log says why.',
};

export function sendRefusal(reply: FastifyReply, refusal: Refusal): FastifyReply {
  return sendError(reply, refusal.code, refusal.message, refusal.headers && { ...refusal.headers });
}

export function tooLargeMessage(maxBodyBytes: number): string {
  return `The body is larger than the limit of ${maxBodyBytes} bytes (--max-body).`;
}

/** A body that could not be read as sent: a lying Content-Length, a connection closed mid-body. */
export function unreadableMessage(detail: string): string {
  return `The request could not be read: ${detail}`;
}
