import Replicate from 'replicate';
import { backoffDelay } from '../backoff.js';
import type { ReplicateApiConfig } from './api-config.js';
import type { ObjectKind, ReplicateObject } from './types.js';

/**
 * Inlet's calls to Replicate, through the official `replicate` client. Its own retry loop ignores
 * `Retry-After` (and does not wait between tries), so the client is given a fetch that does the waiting:
 * 429 (and 5xx or a network error on a GET) is retried after `Retry-After` when the answer gives one,
 * else after an exponential backoff with jitter, every wait multiplied by the time scale.
 */

export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

export interface RetryPolicy {
  /** Tries of one request, the first included. */
  readonly maxAttempts: number;
  /** First backoff when no `Retry-After` is given; doubles per try, ±20% jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 6,
  baseDelayMs: 1000,
  maxDelayMs: 60_000,
});

export interface ReplicateClientOptions {
  readonly fetch?: FetchLike;
  readonly retry?: Partial<RetryPolicy>;
  /** Called before each wait (for logs and tests). */
  readonly onRetry?: (info: { url: string; status: number | undefined; waitMs: number }) => void;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly userAgent?: string;
}

/** An answer from Replicate that is not a success (after retries). */
export class ReplicateApiError extends Error {
  override readonly name = 'ReplicateApiError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A fetched object: its raw body (byte-exact, hashed for the poll key) and the parsed object. */
export type FetchedObject =
  | { readonly found: true; readonly body: Buffer; readonly object: ReplicateObject }
  | { readonly found: false; readonly status: number };

export interface CreatePredictionRequest {
  /** `owner/name`, optionally `:version`. */
  readonly model: string;
  readonly input: Record<string, unknown>;
  readonly webhook?: string;
  readonly webhookEventsFilter?: readonly string[];
}

const sleepReal = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `Retry-After` as milliseconds: delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null, nowMs = Date.now()): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  return Number.isNaN(date) ? undefined : Math.max(0, date - nowMs);
}

interface GaveUp {
  status: number;
  statusText: string;
  headers: [string, string][];
  body: ArrayBuffer;
}

/** A fetch that waits out 429s (and, for GETs, 5xx and network errors) by the policy above. */
export function createRetryingFetch(
  base: FetchLike,
  timeScale: number,
  policy: RetryPolicy,
  options: Pick<ReplicateClientOptions, 'onRetry' | 'sleep'> = {},
): FetchLike {
  const sleep = options.sleep ?? sleepReal;
  // The official client calls again with the same init when it sees a 429: answer those at once.
  const gaveUp = new WeakMap<object, GaveUp>();
  return async (input, init) => {
    const previous = init === undefined ? undefined : gaveUp.get(init);
    if (previous !== undefined) {
      return new Response(previous.body.slice(0), {
        status: previous.status,
        statusText: previous.statusText,
        headers: previous.headers,
      });
    }
    const url = input instanceof Request ? input.url : String(input);
    const idempotent = (init?.method ?? 'GET').toUpperCase() === 'GET';
    for (let attempt = 1; ; attempt++) {
      let response: Response | undefined;
      let failure: unknown;
      try {
        response = await base(input, init);
      } catch (error) {
        // A POST that failed on the network may have been created: never sent twice.
        if (!idempotent || attempt >= policy.maxAttempts) throw error;
        failure = error;
      }
      const retryable =
        response === undefined || response.status === 429 || (idempotent && response.status >= 500);
      if (!retryable) return response as Response;
      if (attempt >= policy.maxAttempts) {
        if (response === undefined) throw failure;
        const body = await response.arrayBuffer();
        const record: GaveUp = {
          status: response.status,
          statusText: response.statusText,
          headers: [...response.headers.entries()],
          body,
        };
        if (init !== undefined) gaveUp.set(init, record);
        return new Response(body.slice(0), record);
      }
      const jittered = backoffDelay({
        baseMs: policy.baseDelayMs,
        maxMs: policy.maxDelayMs,
        attempt,
        jitter: 0.2,
      });
      const retryAfter =
        response === undefined ? undefined : parseRetryAfter(response.headers.get('retry-after'));
      await response?.body?.cancel().catch(() => undefined);
      const waitMs = (retryAfter ?? jittered) * timeScale;
      options.onRetry?.({ url, status: response?.status, waitMs });
      await sleep(waitMs);
    }
  };
}

/** The calls Inlet makes to Replicate. */
export class ReplicateClient {
  readonly baseUrl: string;
  readonly #client: Replicate;

  constructor(config: ReplicateApiConfig, options: ReplicateClientOptions = {}) {
    if (config.token === undefined) {
      throw new Error('REPLICATE_API_TOKEN is not set: Inlet cannot call Replicate without it.');
    }
    this.baseUrl = config.baseUrl;
    const policy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
    const base: FetchLike = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.#client = new Replicate({
      auth: config.token,
      baseUrl: config.baseUrl,
      userAgent: options.userAgent ?? 'inlet',
      fetch: createRetryingFetch(base, config.timeScale, policy, options),
    });
  }

  /** `GET /predictions/{id}` (or `/trainings/{id}`): the raw body, so an unchanged answer hashes the same. */
  async getObject(kind: ObjectKind, id: string): Promise<FetchedObject> {
    const route = `/${kind === 'training' ? 'trainings' : 'predictions'}/${encodeURIComponent(id)}`;
    let response: Response;
    try {
      response = await this.#client.request(route, { method: 'GET' });
    } catch (error) {
      const status = apiErrorStatus(error);
      if (status === 404) return { found: false, status };
      throw toApiError(error);
    }
    const body = Buffer.from(await response.arrayBuffer());
    const object = parseObject(body);
    if (object === undefined) {
      throw new ReplicateApiError(
        response.status,
        `Replicate answered ${route} with a body that is not an object with an id and status.`,
      );
    }
    return { found: true, body, object };
  }

  async createPrediction(request: CreatePredictionRequest): Promise<ReplicateObject> {
    const [model, version] = splitModel(request.model);
    const options = {
      input: request.input,
      ...(request.webhook === undefined ? {} : { webhook: request.webhook }),
      ...(request.webhookEventsFilter === undefined
        ? {}
        : {
            webhook_events_filter: [...request.webhookEventsFilter] as (
              'start' | 'output' | 'logs' | 'completed'
            )[],
          }),
    };
    try {
      const created =
        version === undefined
          ? await this.#client.predictions.create({ model, ...options })
          : await this.#client.predictions.create({ version: `${model}:${version}`, ...options });
      return created as unknown as ReplicateObject;
    } catch (error) {
      throw toApiError(error);
    }
  }

  /** The account's webhook signing secret (`GET /webhooks/default/secret`). */
  async defaultWebhookSecret(): Promise<string> {
    try {
      const { key } = await this.#client.webhooks.default.secret.get();
      if (typeof key !== 'string' || key === '')
        throw new ReplicateApiError(200, 'Replicate answered no secret.');
      return key;
    } catch (error) {
      throw toApiError(error);
    }
  }
}

function splitModel(ref: string): [string, string | undefined] {
  const colon = ref.indexOf(':');
  return colon < 0 ? [ref, undefined] : [ref.slice(0, colon), ref.slice(colon + 1)];
}

function parseObject(body: Buffer): ReplicateObject | undefined {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const { id, status } = value as Record<string, unknown>;
    if (typeof id !== 'string' || id === '' || typeof status !== 'string' || status === '') return undefined;
    return value as ReplicateObject;
  } catch {
    return undefined;
  }
}

function apiErrorStatus(error: unknown): number | undefined {
  const response = (error as { response?: unknown }).response;
  return response instanceof Response ? response.status : undefined;
}

function toApiError(error: unknown): Error {
  if (error instanceof ReplicateApiError) return error;
  const status = apiErrorStatus(error);
  if (status !== undefined) {
    return new ReplicateApiError(status, (error as Error).message);
  }
  return error instanceof Error ? error : new Error(String(error));
}
