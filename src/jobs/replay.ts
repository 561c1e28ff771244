import type { ConsumerRecord, JobStore, NewMessage } from '../store/job-types.js';
import type { TransitionLog, TransitionRecord } from '../store/transition-types.js';
import { modelMatches, newMessageFor, typeMatches } from './consumer.js';

/** `POST /api/replays` and `inlet replay` (CONTRACT §9). */
export interface ReplayRequest {
  destination: string;
  predictionIds?: readonly string[];
  sinceMs?: number;
  untilMs?: number;
  /** The folded status right after the transition (one of these). */
  statuses?: readonly string[];
  /** Exact model. */
  model?: string;
  /** Transition types or patterns; the destination's own `events` when absent. */
  types?: readonly string[];
}

export interface ReplayProgress {
  /** Transitions looked at so far, and the log's last seq when the replay started. */
  seq: number;
  lastSeq: number;
  matched: number;
}

const PAGE = 1000;

function storedPatterns(consumer: ConsumerRecord, key: 'events' | 'models'): string[] | undefined {
  const value = consumer.config[key];
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : undefined;
}

/** Whether a transition is one the replay asks for, within what the destination takes. */
function replayMatcher(consumer: ConsumerRecord, request: ReplayRequest): (t: TransitionRecord) => boolean {
  const types = request.types ?? storedPatterns(consumer, 'events') ?? ['*'];
  const models = storedPatterns(consumer, 'models');
  const statuses = request.statuses === undefined ? undefined : new Set(request.statuses);
  return (t) =>
    typeMatches(types, t.type) &&
    modelMatches(models, t.model) &&
    (request.model === undefined || t.model === request.model) &&
    (statuses === undefined || statuses.has(t.status));
}

/**
 * Sends the matching transitions to the destination again: the same message ids where they existed,
 * pending now with a new round. Answers how many; `dryRun` only counts.
 */
export async function replay(
  log: TransitionLog,
  jobs: JobStore,
  consumer: ConsumerRecord,
  request: ReplayRequest,
  options: { nowMs: number; dryRun?: boolean; onProgress?: (progress: ReplayProgress) => void },
): Promise<number> {
  const matches = replayMatcher(consumer, request);
  const lastSeq = await log.lastTransitionSeq();
  let afterSeq = 0;
  let matched = 0;
  for (;;) {
    const page = await log.listTransitions({
      afterSeq,
      limit: PAGE,
      ...(request.predictionIds === undefined ? {} : { objectIds: request.predictionIds }),
      ...(request.sinceMs === undefined ? {} : { sinceMs: request.sinceMs }),
      ...(request.untilMs === undefined ? {} : { untilMs: request.untilMs }),
    });
    const inRange = page.filter((t) => t.seq <= lastSeq);
    const messages: NewMessage[] = inRange.filter(matches).map((t) => newMessageFor(consumer.name, t));
    if (options.dryRun !== true) await jobs.requeue(consumer.name, messages, options.nowMs);
    matched += messages.length;
    const last = page.at(-1);
    afterSeq = last?.seq ?? afterSeq;
    options.onProgress?.({ seq: Math.min(afterSeq, lastSeq), lastSeq, matched });
    if (last === undefined || page.length < PAGE || last.seq >= lastSeq) return matched;
  }
}
