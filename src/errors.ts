/** The codes the webhook path can answer (CONTRACT §3), in the order its checks run. */
export const WEBHOOK_ERROR_CODES = [
  'method_not_allowed',
  'payload_too_large',
  'unsupported_media_type',
  'missing_signature',
  'malformed_signature',
  'timestamp_out_of_tolerance',
  'invalid_signature',
  'invalid_json',
  'invalid_payload',
  'storage_unavailable',
  'shutting_down',
  'bad_request',
] as const;

/**
 * The closed set of error codes (CONTRACT §7): the webhook's, then those only the API answers. A code is
 * never reused for another meaning or removed.
 */
export const ERROR_CODES = [
  ...WEBHOOK_ERROR_CODES,
  'unauthorized',
  'forbidden',
  'not_found',
  'invalid_query',
  'conflict',
  'internal_error',
] as const;

/** Not an HTTP answer: the config file was unusable at start (exit 2, CONTRACT §9). */
export const CONFIG_ERROR_CODE = 'invalid_config';

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Exhaustive: adding a code without its status fails to compile. */
export const ERROR_STATUS: Record<ErrorCode, number> = {
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  missing_signature: 400,
  malformed_signature: 400,
  timestamp_out_of_tolerance: 403,
  invalid_signature: 403,
  invalid_json: 400,
  invalid_payload: 422,
  storage_unavailable: 503,
  shutting_down: 503,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  invalid_query: 400,
  conflict: 409,
  internal_error: 500,
  bad_request: 400,
};

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: { code, message } };
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}
