import type { IncomingMessage, ServerResponse } from 'node:http';

/** The rate-limit fault: a share of API calls answered 429 with `Retry-After`, as Replicate throttles. */
export interface RateLimitOptions {
  /** Share of `/v1` requests answered 429, 0–1. Deterministic: 0.3 throttles 3 of every 10. */
  readonly fraction: number;
  /** Whole seconds in `Retry-After`. Default 1. */
  readonly retryAfterSec?: number;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Wraps the API handler; files, streams and pages are never throttled. */
export function withRateLimit(
  handler: Handler,
  options: RateLimitOptions | undefined,
): Handler & {
  readonly throttled: () => number;
} {
  let credit = 0;
  let throttled = 0;
  const fraction = options?.fraction ?? 0;
  const retryAfter = String(options?.retryAfterSec ?? 1);
  const wrapped = (req: IncomingMessage, res: ServerResponse) => {
    if (fraction > 0 && (req.url ?? '').startsWith('/v1/')) {
      credit += fraction;
      if (credit >= 1 - 1e-9) {
        credit -= 1;
        throttled++;
        const body = JSON.stringify({
          title: 'Request was throttled',
          detail: `Request was throttled. Expected available in ${retryAfter} second${retryAfter === '1' ? '' : 's'}.`,
          status: 429,
        });
        req.resume();
        res.writeHead(429, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'retry-after': retryAfter,
        });
        res.end(body);
        return;
      }
    }
    handler(req, res);
  };
  return Object.assign(wrapped, { throttled: () => throttled });
}
