import type { ObjectKind } from '../replicate/types.js';

/**
 * The transitions log (one row per accepted change of a folded state) as its readers see it. Ingest
 * appends rows in the same transaction as the event; consumers (destinations, handlers, the archive,
 * `inlet listen`, the live stream) read it from their own durable positions.
 */

export const TRANSITION_KINDS = ['started', 'output', 'logs', 'completed'] as const;
export type TransitionKind = (typeof TRANSITION_KINDS)[number];
/** `prediction.completed`, `training.logs`, … */
export type TransitionType = `${ObjectKind}.${TransitionKind}`;

export interface TransitionRecord {
  /** Position in the log: strictly increasing in commit order, never reused. */
  seq: number;
  /** `tr_…`: never changes (the SSE event id, a message's `transition_id`). */
  id: string;
  type: TransitionType;
  objectId: string;
  kind: ObjectKind;
  model: string | null;
  /** The folded status right after the change. */
  status: string;
  /** Delivery key of the event that caused it (its raw body is what `inlet listen` forwards). */
  eventKey: string;
  recordedAtMs: number;
  /** The folded row's counters right after the change (the `data` of a message shows them). */
  eventCount: number;
  firstReceivedAtMs: number;
  lastReceivedAtMs: number;
  /** The folded object right after the change: the winning event's raw body, byte-exact. */
  body: Buffer;
}

export interface TransitionQuery {
  /** Rows with `seq` greater than this (0 = from the start). */
  afterSeq: number;
  limit: number;
  /** Only these object ids (replay by id). */
  objectIds?: readonly string[];
  /** Only rows recorded in this window (epoch ms, both ends included). */
  sinceMs?: number;
  untilMs?: number;
}

export interface TransitionLog {
  /** In `seq` order. */
  listTransitions(query: TransitionQuery): Promise<TransitionRecord[]>;
  /** The newest `seq`, 0 when the log is empty (where a new consumer starts). */
  lastTransitionSeq(): Promise<number>;
  getTransition(id: string): Promise<TransitionRecord | undefined>;
}
