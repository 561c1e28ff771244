import { encodeSeqCursor } from '../store/cursor.js';
import type {
  ConsumerRecord,
  ConsumerCounts,
  MessageDetailRecord,
  MessageRecord,
} from '../store/job-types.js';
import type { Page } from '../store/types.js';
import { isoTime } from '../views.js';

/** The JSON shapes of CONTRACT §9, shared by the admin API and the CLI's `--json`. */

function time(ms: number | null): string | null {
  return ms === null ? null : isoTime(ms);
}

export function destinationView(consumer: ConsumerRecord, stats: ConsumerCounts): Record<string, unknown> {
  const config = consumer.config;
  return {
    name: consumer.name,
    url: config.url ?? null,
    events: config.events ?? null,
    models: config.models ?? null,
    enabled: consumer.enabled,
    disabled_reason: consumer.disabledReason,
    pending: stats.pending,
    dead: stats.dead,
    last_delivered_at: time(consumer.lastDeliveredAtMs),
    last_error: consumer.lastError,
  };
}

/** One destination with the secret its messages are signed with and its stored configuration. */
export function destinationDetailView(
  consumer: ConsumerRecord,
  stats: ConsumerCounts,
): Record<string, unknown> {
  return { ...destinationView(consumer, stats), secret: consumer.secret, config: consumer.config };
}

function messageView(message: MessageRecord): Record<string, unknown> {
  return {
    id: message.id,
    destination: message.consumer,
    type: message.type,
    prediction_id: message.objectId,
    transition_id: message.transitionId,
    state: message.state,
    attempts: message.attempts,
    next_attempt_at: message.state === 'pending' ? time(message.nextAttemptAtMs) : null,
    last_status: message.lastStatus,
    last_error: message.lastError,
    created_at: isoTime(message.createdAtMs),
    delivered_at: time(message.deliveredAtMs),
  };
}

export function messageDetailView(message: MessageDetailRecord): Record<string, unknown> {
  return {
    ...messageView(message),
    attempt_log: message.attemptLog.map((a) => ({
      at: isoTime(a.atMs),
      status: a.status,
      duration_ms: a.durationMs,
      error: a.error,
    })),
  };
}

export function messagePageView(page: Page<MessageRecord>): {
  data: Record<string, unknown>[];
  next_cursor: string | null;
} {
  const last = page.items.at(-1);
  return {
    data: page.items.map(messageView),
    next_cursor: page.hasMore && last !== undefined ? encodeSeqCursor(last.seq) : null,
  };
}
