import { createHash } from 'node:crypto';
import { decideFold, foldFactsOf, type FoldDecision, type FoldFacts } from '../replicate/fold.js';
import { TERMINAL_RANK } from '../replicate/status.js';
import {
  isTrainingObject,
  type ObjectKind,
  type ReplicateObject,
  SUMMARY_OMITTED_FIELDS,
} from '../replicate/types.js';
import { orderedId } from './random-id.js';
import type { TransitionKind, TransitionRecord } from './transition-types.js';
import type { CommitOutcome, IncomingEvent } from './types.js';

/** The folded state of one object as the store keeps it (one `objects` row), minus the summary. */
export interface ObjectState {
  id: string;
  kind: ObjectKind;
  facts: FoldFacts;
  model: string | null;
  winningEventKey: string;
  eventCount: number;
  conflictCount: number;
  firstReceivedAtMs: number;
  lastReceivedAtMs: number;
  /** Digest of the folded `output` (null on rows folded before digests were kept). */
  outputDigest: string | null;
}

export interface FoldStep {
  decision: FoldDecision;
  next: ObjectState;
  /** The event's object, only when it replaced the folded one (its summary is written). */
  winner: ReplicateObject | undefined;
  /** What the accepted change was (CONTRACT §8), when it was one worth a transition. */
  transition: TransitionKind | undefined;
}

/** A transition the fold decided on; the writer appends it (its `seq` and time), the body is its event's. */
export type NewTransition = Omit<TransitionRecord, 'seq' | 'recordedAtMs' | 'body'>;

/** A short digest of an output value; outputs too deep for JSON fall back to their facts. */
export function outputDigestOf(object: ReplicateObject, facts: FoldFacts): string {
  let json: string;
  try {
    json = JSON.stringify(object.output ?? null);
  } catch {
    json = `unserialisable:${facts.outputKind}:${facts.outputLength}`;
  }
  return createHash('sha256').update(json).digest('base64url').slice(0, 22);
}

function hasOutput(object: ReplicateObject): boolean {
  const { output } = object;
  if (output === null || output === undefined || output === '') return false;
  return !Array.isArray(output) || output.length > 0;
}

/**
 * The transition an applied change makes, in CONTRACT §8's order: completed, else output, else logs,
 * else started (first state of the id); undefined when it changes none of these.
 */
export function transitionKindOf(
  current: ObjectState | undefined,
  next: ObjectState,
  object: ReplicateObject,
): TransitionKind | undefined {
  if (current?.facts.rank === TERMINAL_RANK) return undefined;
  if (next.facts.rank === TERMINAL_RANK) return 'completed';
  if (current === undefined) {
    if (hasOutput(object)) return 'output';
    if (next.facts.logsLength > 0) return 'logs';
    return 'started';
  }
  const outputChanged =
    current.outputDigest !== null
      ? current.outputDigest !== next.outputDigest
      : current.facts.outputKind !== next.facts.outputKind ||
        current.facts.outputLength !== next.facts.outputLength;
  if (outputChanged) return 'output';
  if (current.facts.logsLength !== next.facts.logsLength) return 'logs';
  return undefined;
}

export function summaryOf(object: ReplicateObject): Record<string, unknown> {
  // No prototype: a field named `__proto__` stays a field (on `{}` the assignment would set the prototype).
  const summary: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  for (const [name, value] of Object.entries(object)) {
    if (!SUMMARY_OMITTED_FIELDS.has(name)) summary[name] = value;
  }
  return summary;
}

/**
 * The summary as JSON. A field nested too deep for `JSON.stringify` (JSON.parse accepts more depth
 * than it can write back) is summarised as null rather than failing the commit forever.
 */
function summaryJsonOf(object: ReplicateObject): string {
  const summary = summaryOf(object);
  try {
    return JSON.stringify(summary);
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    const safe: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
    for (const [name, value] of Object.entries(summary)) {
      try {
        JSON.stringify(value);
        safe[name] = value;
      } catch {
        safe[name] = null;
      }
    }
    return JSON.stringify(safe);
  }
}

/**
 * What one new (non-duplicate) event does to its object, CONTRACT §4. Dialect-independent: each
 * dialect reads the current state inside its transaction, calls this, and writes `next` back.
 */
export function foldEvent(current: ObjectState | undefined, event: IncomingEvent): FoldStep {
  const { object } = event;
  const observedAtSec = event.webhookTimestampSec ?? Math.floor(event.receivedAtMs / 1000);
  const facts = foldFactsOf(object, observedAtSec);
  const decision = decideFold(current?.facts, facts);
  const kind: ObjectKind =
    current?.kind === 'training' || isTrainingObject(object) ? 'training' : 'prediction';
  const eventCount = (current?.eventCount ?? 0) + 1;
  // Concurrent requests may commit slightly out of receive order: never move backwards.
  const lastReceivedAtMs = Math.max(current?.lastReceivedAtMs ?? event.receivedAtMs, event.receivedAtMs);
  const firstReceivedAtMs = current?.firstReceivedAtMs ?? event.receivedAtMs;

  if (decision === 'apply' || current === undefined) {
    // The model column feeds filters: keep the last known model when the winning body has none.
    const model = typeof object.model === 'string' ? object.model : (current?.model ?? null);
    const next: ObjectState = {
      id: object.id,
      kind,
      facts,
      model,
      winningEventKey: event.key,
      eventCount,
      conflictCount: current?.conflictCount ?? 0,
      firstReceivedAtMs,
      lastReceivedAtMs,
      outputDigest: outputDigestOf(object, facts),
    };
    return { decision, next, winner: object, transition: transitionKindOf(current, next, object) };
  }
  return {
    decision,
    next: {
      ...current,
      kind,
      eventCount,
      conflictCount: current.conflictCount + (decision === 'conflict' ? 1 : 0),
      lastReceivedAtMs,
    },
    winner: undefined,
    transition: undefined,
  };
}

export interface BatchFold {
  /** One per event, in order. */
  outcomes: CommitOutcome[];
  /** Each touched object's state after the whole batch (the map passed in, updated). */
  states: Map<string, ObjectState>;
  /** The summary JSON of each object whose winning event changed in this batch. */
  summaries: Map<string, string>;
  /** Keys of the events kept as conflicts. */
  conflicts: string[];
  /** The batch's transitions, in event order (CONTRACT §8). */
  transitions: NewTransition[];
}

/**
 * Folds a committed batch in memory, in order: each object is read once before and written once after,
 * however many of its events the batch holds. `states` holds the current state of the objects that
 * exist (new objects are absent); `isNew(event, i)` says whether event `i` was stored (not a duplicate).
 */
export function foldBatch(
  events: readonly IncomingEvent[],
  isNew: (event: IncomingEvent, index: number) => boolean,
  states: Map<string, ObjectState>,
): BatchFold {
  const winners = new Map<string, ReplicateObject>();
  const conflicts: string[] = [];
  const transitions: NewTransition[] = [];
  const outcomes = events.map((event, i): CommitOutcome => {
    if (!isNew(event, i)) return { duplicate: true, applied: false, conflict: false };
    const id = event.object.id;
    const step = foldEvent(states.get(id), event);
    states.set(id, step.next);
    if (step.winner !== undefined) winners.set(id, step.winner);
    if (step.decision === 'conflict') conflicts.push(event.key);
    if (step.transition !== undefined) {
      const { next } = step;
      transitions.push({
        id: orderedId('tr_'),
        type: `${next.kind}.${step.transition}`,
        objectId: id,
        kind: next.kind,
        model: next.model,
        status: next.facts.status,
        eventKey: event.key,
        eventCount: next.eventCount,
        firstReceivedAtMs: next.firstReceivedAtMs,
        lastReceivedAtMs: next.lastReceivedAtMs,
      });
    }
    return { duplicate: false, applied: step.decision === 'apply', conflict: step.decision === 'conflict' };
  });
  // Serialised once per object, for the batch's last winner only.
  const summaries = new Map([...winners].map(([id, object]) => [id, summaryJsonOf(object)]));
  return { outcomes, states, summaries, conflicts, transitions };
}
