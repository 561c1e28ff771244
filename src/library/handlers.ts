import { DEFAULT_RETRY_DELAYS_MS, DestinationSchema } from '../jobs/destination-config.js';
import type { ConsumerDefinition } from '../jobs/consumer.js';
import type { AttemptResult, Deliverer, OutboundMessage } from '../jobs/deliverer.js';

/** What a handler receives (CONTRACT §10): `id` is the message id, the same on every retry. */
export interface HandlerMessage {
  /** `msg_…`: the idempotency key (the same on every attempt, and for every replay). */
  readonly id: string;
  /** The transition type, e.g. `prediction.completed`. */
  readonly type: string;
  /** When the change was recorded (RFC 3339). */
  readonly timestamp: string;
  /** The prediction as `GET /api/predictions/:id` shows it, right after the change. */
  readonly data: Record<string, unknown>;
}

export interface HandlerContext {
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborted when Inlet is closing or the attempt's time is up. */
  readonly signal: AbortSignal;
}

/** Returns (or resolves): done. Throws (or rejects): tried again on the handler's retry schedule. */
export type Handler = (message: HandlerMessage, context: HandlerContext) => unknown;

export interface HandlerOptions {
  /**
   * The handler's durable name: its position in the transitions log is kept under it, so it resumes
   * after a restart. Default: its patterns joined by commas (give a name when two handlers share them).
   */
  readonly name?: string;
  /** Exact `owner/name` or `owner/*`; every model when absent. */
  readonly models?: readonly string[];
  /** Wait before each retry (±20% jitter); after the last, the message is dead. Default: about 24 h. */
  readonly retryDelaysMs?: readonly number[];
  /** Hold a message until the earlier ones of the same prediction are done. Default true. */
  readonly ordered?: boolean;
  /** Handler calls at once. Default 10. */
  readonly maxInFlight?: number;
  /** One call's time limit (its `signal` aborts, and it is retried). Default 60,000. */
  readonly timeoutMs?: number;
  /** A handler seen for the first time starts at the end of the log (`now`, default) or its beginning. */
  readonly startAt?: 'now' | 'beginning';
}

export const HANDLER_DEFAULTS = {
  ordered: true,
  maxInFlight: 10,
  timeoutMs: 60_000,
  retryDelaysMs: DEFAULT_RETRY_DELAYS_MS,
} as const;

/** Handlers share the consumers' namespace with HTTP destinations; the prefix keeps them apart. */
const HANDLER_CONSUMER_PREFIX = 'handler:';

const HANDLER_NAME = /^[A-Za-z0-9*][A-Za-z0-9_.,*:-]{0,62}$/;

const eventsSchema = DestinationSchema.shape.events;
const modelsSchema = DestinationSchema.shape.models;

function describe(error: unknown): string {
  if (error instanceof Error) return error.message || error.name;
  return String(error);
}

/** Calls a handler in this process: one attempt, the outcome as a value. */
class HandlerDeliverer implements Deliverer {
  constructor(readonly handler: Handler) {}

  async deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult> {
    const started = performance.now();
    const durationMs = () => Math.round(performance.now() - started);
    try {
      await this.handler(
        {
          id: message.id,
          type: message.type,
          timestamp: new Date(message.recordedAtMs).toISOString(),
          data: message.data,
        },
        { attempt: message.attempt, signal },
      );
      return { outcome: 'delivered', durationMs: durationMs() };
    } catch (error) {
      return { outcome: 'retry', error: describe(error), durationMs: durationMs() };
    }
  }
}

/** Checks a registration and makes the consumer the runner works on. Throws `TypeError` on misuse. */
export function handlerConsumer(
  pattern: string | readonly string[],
  handler: Handler,
  options: HandlerOptions = {},
): ConsumerDefinition {
  if (typeof handler !== 'function')
    throw new TypeError('inlet.on(pattern, handler): handler must be a function.');
  const patterns = typeof pattern === 'string' ? [pattern] : [...pattern];
  const events = eventsSchema.safeParse(patterns);
  if (!events.success) {
    throw new TypeError(
      `inlet.on(): ${JSON.stringify(pattern)} is not a transition type or pattern (prediction.completed, prediction.*, *).`,
    );
  }
  const models = modelsSchema.safeParse(options.models);
  if (!models.success) throw new TypeError('inlet.on(): models must be owner/name or owner/* entries.');
  const name = options.name ?? patterns.join(',');
  if (!HANDLER_NAME.test(name)) {
    throw new TypeError(`inlet.on(): the name "${name}" must be 1-63 letters, digits, _ . : or -.`);
  }
  const retryDelaysMs = options.retryDelaysMs ?? HANDLER_DEFAULTS.retryDelaysMs;
  if (!retryDelaysMs.every((d) => Number.isFinite(d) && d >= 0)) {
    throw new TypeError('inlet.on(): retryDelaysMs must hold numbers >= 0.');
  }
  return {
    name: `${HANDLER_CONSUMER_PREFIX}${name}`,
    kind: 'handler',
    events: events.data,
    ...(models.data === undefined ? {} : { models: models.data }),
    ordered: options.ordered ?? HANDLER_DEFAULTS.ordered,
    maxInFlight: Math.max(1, Math.floor(options.maxInFlight ?? HANDLER_DEFAULTS.maxInFlight)),
    retryDelaysMs: [...retryDelaysMs],
    attemptTimeoutMs: options.timeoutMs ?? HANDLER_DEFAULTS.timeoutMs,
    deliverer: new HandlerDeliverer(handler),
    config: { events: events.data, models: models.data ?? null },
    ...(options.startAt === undefined ? {} : { startAt: options.startAt }),
  };
}
