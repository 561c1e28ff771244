/**
 * The seam between the runner (claims, leases, retries, dead letters) and what actually carries a
 * message somewhere: an HTTP destination, a broker, an in-process handler. A deliverer makes one
 * attempt and says what happened as a value; it never throws for an expected failure.
 */

/** One message (one transition for one consumer), as a deliverer sees it on one attempt. */
export interface OutboundMessage {
  /** `msg_…`: the same on every attempt and every replay of this message (its idempotency key). */
  readonly id: string;
  /** The consumer's name (a destination's `name`). */
  readonly consumer: string;
  /** The transition type, e.g. `prediction.completed`. */
  readonly type: string;
  readonly objectId: string;
  readonly transitionId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** The transition's time (RFC 3339 in the body's `timestamp`). */
  readonly recordedAtMs: number;
  /** The message body's `data`: the folded object as `GET /api/predictions/:id` shows it. */
  readonly data: Record<string, unknown>;
}

export type AttemptResult =
  /** 2xx, a broker's acknowledgement, a handler that returned. */
  | { readonly outcome: 'delivered'; readonly status?: number; readonly durationMs: number }
  /**
   * Anything to try again later: other statuses, redirects, timeouts, connection errors, a handler
   * that threw. `retryAfterMs` when the answer asked for a wait (`Retry-After`).
   */
  | {
      readonly outcome: 'retry';
      readonly status?: number;
      readonly error: string;
      readonly retryAfterMs?: number;
      readonly durationMs: number;
    }
  /** 410 Gone: the consumer is disabled with this reason; its position stays. */
  | {
      readonly outcome: 'disable';
      readonly status: number;
      readonly reason: string;
      readonly durationMs: number;
    };

export interface Deliverer {
  /** One attempt. `signal` aborts it (shutdown, lease lost); an aborted attempt is a `retry`. */
  deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult>;
  /** Releases connections (agents, broker clients). */
  close?(): Promise<void>;
}
