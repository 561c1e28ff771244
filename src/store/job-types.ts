import type { Page } from './types.js';

/**
 * Consumers and their messages (CONTRACT §8, §9) as the runner, the API and the CLI see them. A
 * consumer reads the transitions log from its own durable position; each matching transition becomes
 * one message for it (fan-out), which the runner claims under a lease, attempts, retries and finally
 * marks delivered or dead. Ingest never writes here.
 */

export const CONSUMER_KINDS = ['destination', 'handler', 'listen', 'archive'] as const;
export type ConsumerKind = (typeof CONSUMER_KINDS)[number];

export const MESSAGE_STATES = ['pending', 'delivered', 'dead'] as const;
export type MessageState = (typeof MESSAGE_STATES)[number];

export interface ConsumerUpsert {
  name: string;
  kind: ConsumerKind;
  /** What the API shows of its configuration (url, events, models), as JSON. */
  config: Record<string, unknown>;
  configHash: string;
  /** Replaces the stored secret when given; a new consumer without one gets `generateSecret()`. */
  secret?: string;
  generateSecret?: () => string;
  /** Where a new consumer starts: the log's last seq ("now"). Ignored for an existing consumer. */
  startPosition: number;
  nowMs: number;
}

export interface ConsumerRecord {
  name: string;
  kind: ConsumerKind;
  /** The seq of the last transition fanned out into messages. */
  position: number;
  enabled: boolean;
  disabledReason: string | null;
  secret: string | null;
  configHash: string;
  config: Record<string, unknown>;
  createdAtMs: number;
  updatedAtMs: number;
  lastDeliveredAtMs: number | null;
  lastError: string | null;
}

/** A consumer's messages by state: two index counts. */
export interface ConsumerCounts {
  pending: number;
  dead: number;
}

export interface ConsumerStats extends ConsumerCounts {
  /** `recorded_at` of the oldest transition this consumer has not delivered yet (pending messages). */
  oldestPendingAtMs: number | null;
}

/** One transition for one consumer, as fan-out writes it. */
export interface NewMessage {
  /** `msg_…`, from the consumer's name and the transition id: a replay finds the same row. */
  id: string;
  transitionSeq: number;
  transitionId: string;
  objectId: string;
  type: string;
  /** The transition's time. */
  recordedAtMs: number;
}

export interface MessageRecord extends NewMessage {
  /** Position in `messages` (newest first in lists). */
  seq: number;
  consumer: string;
  state: MessageState;
  /** Attempts made, all rounds. */
  attempts: number;
  /** Attempts since the message last became pending (a retry or replay starts a new round). */
  roundAttempts: number;
  nextAttemptAtMs: number | null;
  leaseOwner: string | null;
  leaseUntilMs: number | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAtMs: number;
  deliveredAtMs: number | null;
}

export interface AttemptRecord {
  atMs: number;
  status: number | null;
  durationMs: number;
  error: string | null;
}

export interface MessageDetailRecord extends MessageRecord {
  attemptLog: AttemptRecord[];
}

export interface MessageQuery {
  consumer?: string;
  state?: MessageState;
  objectId?: string;
  limit: number;
  /** The seq of the last row of the previous page (newest first). */
  after?: number;
}

export interface ClaimRequest {
  consumer: string;
  /** Who holds the leases (one runner). */
  owner: string;
  nowMs: number;
  leaseMs: number;
  /** At most this many now (the runner's free slots). */
  limit: number;
  /** Leases held by every instance together stay under this. */
  maxInFlight: number;
  /** Skip messages whose object has an earlier message still pending. */
  ordered: boolean;
}

/** What one attempt did to its message, decided by the runner from the deliverer's result. */
export type AttemptVerdict =
  | { readonly state: 'delivered' }
  | { readonly state: 'retry'; readonly nextAttemptAtMs: number }
  | { readonly state: 'dead' }
  /** 410: the consumer is disabled; the message stays pending for when it is enabled again. */
  | { readonly state: 'disable'; readonly reason: string };

export interface AttemptOutcome {
  messageId: string;
  consumer: string;
  owner: string;
  attempt: AttemptRecord;
  verdict: AttemptVerdict;
}

export type RetryResult = 'retried' | 'not_found' | 'not_dead';

export interface JobStore {
  /** Creates the consumer (at `startPosition`) or updates its configuration; answers the stored row. */
  upsertConsumer(consumer: ConsumerUpsert): Promise<ConsumerRecord>;
  getConsumer(name: string): Promise<ConsumerRecord | undefined>;
  listConsumers(kind?: ConsumerKind): Promise<ConsumerRecord[]>;
  /** Pending and dead messages: what the API and the CLI show. */
  consumerCounts(name: string): Promise<ConsumerCounts>;
  /**
   * The counts and the oldest pending message's `recorded_at`, for the lag gauge. That last read visits
   * every pending row (≈ 16 ms of SQLite at 60,000 pending): not for every API call.
   */
  consumerStats(name: string): Promise<ConsumerStats>;
  /**
   * Inserts the messages (existing ids are left alone) and moves the position from `fromPosition` to
   * `toPosition`, in one transaction. False when the position was not `fromPosition` any more (another
   * instance fanned out first) or the consumer is disabled: nothing was written.
   */
  fanOut(
    consumer: string,
    fromPosition: number,
    toPosition: number,
    messages: readonly NewMessage[],
    nowMs: number,
  ): Promise<boolean>;
  /** Leases due messages (oldest transition first); none while the consumer is disabled. */
  claim(request: ClaimRequest): Promise<MessageRecord[]>;
  /**
   * Records attempts and their verdicts, all in one transaction; then makes `claims` (the slots those
   * attempts free), in the same transaction where the store can (SQLite: one write instead of one per
   * claim). Answers each claim's messages, in the order of `claims`.
   */
  complete(
    outcomes: readonly AttemptOutcome[],
    nowMs: number,
    claims?: readonly ClaimRequest[],
  ): Promise<MessageRecord[][]>;
  /** Gives leases back without counting an attempt (shutdown). */
  release(messageIds: readonly string[], owner: string): Promise<void>;
  /** When the earliest pending message of the consumer is due (or its lease ends); undefined when none. */
  nextDueAtMs(consumer: string): Promise<number | undefined>;
  /** Enables (clearing the reason) or disables it; `position` moves it (enable --from now). */
  setConsumerEnabled(
    name: string,
    change: { enabled: boolean; reason?: string; position?: number; nowMs: number },
  ): Promise<boolean>;

  listMessages(query: MessageQuery): Promise<Page<MessageRecord>>;
  getMessage(id: string): Promise<MessageDetailRecord | undefined>;
  /** A dead message becomes pending now, with a new round of its schedule. */
  retryMessage(id: string, nowMs: number): Promise<RetryResult>;
  /** Every dead message (of one consumer) becomes pending now; answers how many. */
  retryDead(consumer: string | undefined, nowMs: number): Promise<number>;
  /**
   * Replay: each message becomes pending now, created when it did not exist, with a new round. A
   * message being attempted right now keeps its lease. Answers how many.
   */
  requeue(consumer: string, messages: readonly NewMessage[], nowMs: number): Promise<number>;
  /**
   * Calls `onNotify` when another process appends transitions (PostgreSQL `LISTEN inlet_transitions`;
   * a no-op where one process writes). Answers the unsubscribe.
   */
  watchTransitions(onNotify: () => void): Promise<() => Promise<void>>;
  /** Removes the consumer with its messages and their attempts (an expired `inlet listen`); false when unknown. */
  deleteConsumer(name: string): Promise<boolean>;
}
