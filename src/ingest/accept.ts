import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { type ErrorCode, ERROR_STATUS, errorBody } from '../errors.js';
import type { DeliveryCode, DeliveryOutcome } from '../metrics/metrics.js';
import type { ReplicateObject } from '../replicate/types.js';
import type { IncomingEvent, Scheme } from '../store/types.js';
import { headerValue } from '../verify/headers.js';
import { bodyDeliveryKey, createVerifier, hasSignatureHeaders, type Verifier } from '../verify/index.js';
import type { CommitBatcher, CommitResult } from './commit-batcher.js';
import { isJsonContentType, redactHeaders } from './headers.js';
import { outputPreview } from './output-preview.js';
import type { RejectionLog } from './rejection-log.js';

export interface IngestOptions {
  secrets: readonly string[];
  toleranceSec: number;
  acceptHexSignature: boolean;
  insecureSkipVerify: boolean;
  /** Seconds a 503 asks the sender to wait. */
  retryAfterSec?: number;
  /** Injectable clock for the timestamp check. */
  nowSec?: () => number;
  /** Adds a short preview of `output` to the "Received webhook" line (for people reading pretty logs). */
  previewOutput?: boolean;
}

export interface WebhookRequest {
  headers: IncomingHttpHeaders;
  body: Buffer;
  remoteAddress: string;
  receivedAtMs: number;
}

export interface WebhookAnswer {
  status: number;
  /** For metrics: what became of the delivery, and its error code (`ok` for a 200). */
  outcome: DeliveryOutcome;
  code: DeliveryCode;
  body: object;
  headers?: Record<string, string>;
}

/** Rejected bodies are kept up to this size, except authenticated bodies that failed parsing (kept whole). */
export const REJECTION_BODY_BYTES = 64 * 1024;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Where every accepted delivery enters, whatever way it came (HTTP, or reconcile's poll of Replicate's
 * API): one commit through the batcher, so it dedupes, folds and transitions alike, and one log line.
 */
class EventIngest {
  readonly #batcher: CommitBatcher;
  readonly #logger: Logger;
  readonly #previewOutput: boolean;

  constructor(batcher: CommitBatcher, logger: Logger, options: { previewOutput?: boolean } = {}) {
    this.#batcher = batcher;
    this.#logger = logger;
    this.#previewOutput = options.previewOutput === true;
  }

  async ingestEvent(event: IncomingEvent): Promise<CommitResult> {
    const result = await this.#batcher.submit(event);
    if (event.scheme === 'poll') this.#logPolled(event, result);
    else this.#logWebhook(event, result);
    return result;
  }

  #logWebhook(event: IncomingEvent, result: CommitResult): void {
    const object = event.object;
    // Plain fields, not a child logger: this runs once per delivery.
    const ids = { predictionId: object.id, deliveryId: event.key };
    if (!result.ok) {
      this.#logger.warn(
        { ...ids, reason: result.reason },
        `Could not store webhook for prediction ${object.id}: answering 503`,
      );
      return;
    }
    const { duplicate, conflict } = result.outcome;
    if (duplicate) {
      this.#logger.info(
        ids,
        `Received duplicate webhook for prediction ${object.id} with status ${object.status} (already stored)`,
      );
    } else {
      const preview = this.#previewOutput ? outputPreview(object.output) : undefined;
      this.#logger.info(
        { ...ids, scheme: event.scheme, conflict },
        `Received webhook for prediction ${object.id} with status ${object.status}` +
          (preview === undefined ? '' : ` — output ${preview}`),
      );
    }
  }

  #logPolled(event: IncomingEvent, result: CommitResult): void {
    const { id, status } = event.object;
    const ids = { predictionId: id, deliveryId: event.key, scheme: event.scheme };
    if (!result.ok) {
      this.#logger.warn(
        { ...ids, reason: result.reason },
        `Could not store polled state of prediction ${id}`,
      );
    } else if (result.outcome.applied) {
      this.#logger.info(
        { ...ids, conflict: result.outcome.conflict },
        `Received ${event.scheme} for prediction ${id} with status ${status}`,
      );
    }
  }
}

/**
 * The HTTP intake of the webhook pipeline (CONTRACT §3), from the content type on (method and size are
 * checked before the body is read): it verifies, parses and answers, keeps what it refuses in the
 * rejections log, and hands what it accepts to `EventIngest`.
 */
export class Ingest {
  readonly #options: IngestOptions;
  readonly #events: EventIngest;
  readonly #rejections: RejectionLog;
  readonly #logger: Logger;
  readonly #verify: Verifier;

  constructor(options: IngestOptions, batcher: CommitBatcher, rejections: RejectionLog, logger: Logger) {
    this.#options = options;
    this.#verify = createVerifier({
      secrets: options.secrets,
      toleranceSec: options.toleranceSec,
      acceptHex: options.acceptHexSignature,
      ...(options.nowSec ? { nowSec: options.nowSec } : {}),
    });
    this.#events = new EventIngest(batcher, logger, { previewOutput: options.previewOutput === true });
    this.#rejections = rejections;
    this.#logger = logger;
  }

  /** Answers a request that failed before its body could be read (405, 413). */
  reject(
    request: Omit<WebhookRequest, 'body'> & { body?: Buffer },
    code: ErrorCode,
    message: string,
  ): WebhookAnswer {
    return this.#reject({ ...request, body: request.body ?? Buffer.alloc(0) }, code, message, false);
  }

  async accept(request: WebhookRequest): Promise<WebhookAnswer> {
    const { headers, body } = request;
    const contentType = headerValue(headers, 'content-type');
    if (!isJsonContentType(contentType)) {
      return this.#reject(
        request,
        'unsupported_media_type',
        `Content-Type must be JSON (application/json); got "${contentType ?? ''}".`,
        false,
      );
    }

    let scheme: Scheme;
    let key: string;
    let webhookTimestampSec: number | null = null;
    const signed = hasSignatureHeaders(headers);
    if (this.#options.insecureSkipVerify && (!signed || this.#options.secrets.length === 0)) {
      scheme = 'unsigned';
      key = headerValue(headers, 'webhook-id') ?? bodyDeliveryKey(body);
    } else {
      const verified = this.#verify(body, headers);
      if (!verified.ok) return this.#reject(request, verified.code, verified.message, false);
      scheme = verified.scheme;
      key = verified.key;
      webhookTimestampSec = verified.timestampSec;
    }

    const authenticated = scheme !== 'unsigned';
    let parsed: unknown;
    try {
      parsed = JSON.parse(utf8.decode(body));
    } catch {
      return this.#reject(request, 'invalid_json', 'The body is not valid JSON (UTF-8).', authenticated);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      return this.#reject(request, 'invalid_json', 'The body is JSON but not a JSON object.', authenticated);
    }
    const object = parsed as Record<string, unknown>;
    if (
      typeof object.id !== 'string' ||
      object.id === '' ||
      typeof object.status !== 'string' ||
      object.status === ''
    ) {
      return this.#reject(
        request,
        'invalid_payload',
        'The body must be a Replicate prediction: a JSON object with a non-empty string "id" and "status".',
        authenticated,
      );
    }

    const event: IncomingEvent = {
      key,
      scheme,
      receivedAtMs: request.receivedAtMs,
      webhookTimestampSec,
      headers: redactHeaders(headers),
      body,
      object: object as ReplicateObject,
    };
    const result = await this.ingestEvent(event);
    if (!result.ok) {
      return {
        status: ERROR_STATUS.storage_unavailable,
        outcome: 'unavailable',
        code: 'storage_unavailable',
        headers: { 'retry-after': String(this.#options.retryAfterSec ?? 2) },
        body: errorBody(
          'storage_unavailable',
          result.reason === 'timeout'
            ? 'The store could not commit this delivery in time; retry later.'
            : 'The store failed to commit this delivery; retry later.',
        ),
      };
    }
    const { duplicate } = result.outcome;
    return {
      status: 200,
      outcome: duplicate ? 'duplicate' : 'accepted',
      code: 'ok',
      body: { received: true, duplicate },
    };
  }

  /** A delivery that came another way than HTTP (reconcile's poll): see `EventIngest`. */
  ingestEvent(event: IncomingEvent): Promise<CommitResult> {
    return this.#events.ingestEvent(event);
  }

  #reject(request: WebhookRequest, code: ErrorCode, message: string, authenticated: boolean): WebhookAnswer {
    const status = ERROR_STATUS[code];
    const onlyCounted = this.#rejections.record({
      receivedAtMs: request.receivedAtMs,
      code,
      message,
      remoteAddress: request.remoteAddress,
      headers: redactHeaders(request.headers),
      // The rejection log copies what it keeps: this slice never outlives the request.
      body: authenticated ? request.body : request.body.subarray(0, REJECTION_BODY_BYTES),
    });
    // Past its source's budget a rejection is only counted (the rejection log reports those every 10 s).
    if (!onlyCounted) {
      this.#logger.info({ code, status, remoteAddress: request.remoteAddress }, `Rejected webhook: ${code}`);
    }
    const headers: Record<string, string> = code === 'method_not_allowed' ? { allow: 'POST' } : {};
    return { status, outcome: 'rejected', code, headers, body: errorBody(code, message) };
  }
}
