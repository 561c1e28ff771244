import type { IncomingHttpHeaders } from 'node:http';
import type { Ingest, WebhookAnswer } from '../ingest/accept.js';

/**
 * What the library's two front-ends (the Node listener and the fetch handler) share: the path and
 * method checks, the size limit, then the same ingest pipeline as `inlet serve` (CONTRACT §3).
 */
export interface ReceiverOptions {
  /** Only this path (and with one trailing slash) is served; `undefined` serves every path. */
  readonly path: string | undefined;
  readonly maxBodyBytes: number;
}

export interface ReceivedRequest {
  readonly headers: IncomingHttpHeaders;
  readonly remoteAddress: string;
  readonly receivedAtMs: number;
}

export class Receiver {
  constructor(
    readonly ingest: Ingest,
    readonly options: ReceiverOptions,
    /** Called after a delivery is committed as new (not a duplicate). */
    readonly onAccepted: () => void = () => undefined,
  ) {}

  /** The answer for a request that must not be read further, or `undefined` to read its body. */
  precheck(
    method: string,
    pathname: string,
    contentLength: number | undefined,
    request: ReceivedRequest,
  ): WebhookAnswer | undefined {
    const { path, maxBodyBytes } = this.options;
    if (path !== undefined && pathname !== path && pathname !== `${path}/`) {
      return {
        status: 404,
        outcome: 'rejected',
        code: 'not_found',
        body: { error: { code: 'not_found', message: `Nothing is served at ${method} ${pathname}.` } },
      };
    }
    if (method !== 'POST') {
      return this.ingest.reject(
        request,
        'method_not_allowed',
        `Use POST to deliver webhooks here; got ${method}.`,
      );
    }
    if (contentLength !== undefined && contentLength > maxBodyBytes) return this.tooLarge(request);
    return undefined;
  }

  tooLarge(request: ReceivedRequest): WebhookAnswer {
    const message = `The body is larger than the limit of ${this.options.maxBodyBytes} bytes (maxBodyBytes).`;
    const answer = this.ingest.reject(request, 'payload_too_large', message);
    return { ...answer, headers: { ...answer.headers, connection: 'close' } };
  }

  async accept(request: ReceivedRequest, body: Buffer): Promise<WebhookAnswer> {
    const answer = await this.ingest.accept({ ...request, body });
    if (answer.outcome === 'accepted') this.onAccepted();
    return answer;
  }
}

/** `content-length` as a number, when the request states a usable one. */
export function statedLength(value: string | null | undefined): number | undefined {
  if (value === undefined || value === null || !/^\d+$/.test(value.trim())) return undefined;
  return Number(value);
}

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
