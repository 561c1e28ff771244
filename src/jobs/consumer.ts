import { createHash } from 'node:crypto';
import type { ConsumerKind, ConsumerRecord, NewMessage } from '../store/job-types.js';
import type { TransitionRecord } from '../store/transition-types.js';
import type { Deliverer } from './deliverer.js';

/**
 * A consumer (CONTRACT §8): a named reader of the transitions log with its own durable position. An
 * HTTP destination, a library handler and `inlet listen` are all one of these; only the deliverer
 * differs.
 */
export interface ConsumerDefinition {
  /** Unique among consumers; part of every message id. */
  readonly name: string;
  readonly kind: ConsumerKind;
  /** Transition types, with `*` and `prediction.*` patterns. */
  readonly events: readonly string[];
  /** Exact `owner/name` or `owner/*`; every model when absent. */
  readonly models?: readonly string[];
  /** Hold a message until the earlier ones of the same object are delivered or dead. */
  readonly ordered: boolean;
  /** Attempts at once (over every instance sharing the store). */
  readonly maxInFlight: number;
  /** Wait before each retry (±20% jitter); after the last, the message is dead. */
  readonly retryDelaysMs: readonly number[];
  /** One attempt is aborted after this; a lease outlasts it. */
  readonly attemptTimeoutMs: number;
  /**
   * What carries the messages. A function gets the stored consumer first (a destination's generated
   * secret lives there). The runner closes it when it stops.
   */
  readonly deliverer: Deliverer | ((consumer: ConsumerRecord) => Deliverer);
  /** Stored once (replacing the stored one); when absent a new consumer gets `generateSecret()`. */
  readonly secret?: string;
  readonly generateSecret?: () => string;
  /** What the API shows of it (`url`, `events`, `models`). */
  readonly config?: Record<string, unknown>;
  /** Where a consumer seen for the first time starts: the end of the log (default) or its beginning. */
  readonly startAt?: 'now' | 'beginning';
}

/** `*`, `prediction.*`, or an exact type. */
export function typeMatches(patterns: readonly string[], type: string): boolean {
  return patterns.some(
    (p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))),
  );
}

/** Exact `owner/name` or `owner/*`; no patterns means every model. */
export function modelMatches(patterns: readonly string[] | undefined, model: string | null): boolean {
  if (patterns === undefined) return true;
  if (model === null) return false;
  return patterns.some((p) => p === model || (p.endsWith('/*') && model.startsWith(p.slice(0, -1))));
}

export function consumerWants(
  consumer: Pick<ConsumerDefinition, 'events' | 'models'>,
  transition: Pick<TransitionRecord, 'type' | 'model'>,
): boolean {
  return typeMatches(consumer.events, transition.type) && modelMatches(consumer.models, transition.model);
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/**
 * `msg_` + 27 base62 characters from the consumer's name and the transition id: the same on every
 * attempt and every replay, and different for each consumer (CONTRACT §9).
 */
export function messageIdFor(consumer: string, transitionId: string): string {
  let n = BigInt(`0x${createHash('sha256').update(`${consumer}\0${transitionId}`).digest('hex')}`);
  let out = '';
  for (let i = 0; i < 27; i++) {
    out += BASE62[Number(n % 62n)];
    n /= 62n;
  }
  return `msg_${out}`;
}

export function newMessageFor(consumer: string, transition: TransitionRecord): NewMessage {
  return {
    id: messageIdFor(consumer, transition.id),
    transitionSeq: transition.seq,
    transitionId: transition.id,
    objectId: transition.objectId,
    type: transition.type,
    recordedAtMs: transition.recordedAtMs,
  };
}

/** Changes when the consumer's filter or target changes (stored, shown to operators). */
export function configHash(definition: ConsumerDefinition): string {
  return createHash('sha256')
    .update(
      JSON.stringify({
        kind: definition.kind,
        events: definition.events,
        models: definition.models ?? null,
        config: definition.config ?? null,
      }),
    )
    .digest('hex')
    .slice(0, 16);
}
