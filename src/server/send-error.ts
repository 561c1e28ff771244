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
