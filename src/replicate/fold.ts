import { statusRank, TERMINAL_RANK } from './status.js';
import type { ReplicateObject } from './types.js';

/** What the fold needs to know about the current state or a new event (CONTRACT §4). */
export interface FoldFacts {
  status: string;
  rank: number;
  /** `webhook-timestamp`, else the receive time, in whole seconds. */
  observedAtSec: number;
  logsLength: number;
  outputKind: OutputKind;
  /** Items of an array output, or characters of a string output; 0 otherwise. */
  outputLength: number;
}

export type OutputKind = 'array' | 'string' | 'other';

export type FoldDecision = 'apply' | 'ignore' | 'conflict';

export function foldFactsOf(object: ReplicateObject, observedAtSec: number): FoldFacts {
  const { output, logs } = object;
  let outputKind: OutputKind = 'other';
  let outputLength = 0;
  if (Array.isArray(output)) {
    outputKind = 'array';
    outputLength = output.length;
  } else if (typeof output === 'string') {
    outputKind = 'string';
    outputLength = output.length;
  }
  return {
    status: object.status,
    rank: statusRank(object.status),
    observedAtSec,
    logsLength: typeof logs === 'string' ? logs.length : 0,
    outputKind,
    outputLength,
  };
}

/**
 * Decides what a newly stored (non-duplicate) event does to the folded state. Replicate's advice:
 * ignore everything after the terminal webhook, and ignore webhooks that regress.
 */
export function decideFold(current: FoldFacts | undefined, next: FoldFacts): FoldDecision {
  if (current === undefined) return 'apply';
  if (current.rank === TERMINAL_RANK) {
    // First terminal wins; a different terminal status later is a conflict, a repeat is not.
    return next.rank === TERMINAL_RANK && next.status !== current.status ? 'conflict' : 'ignore';
  }
  if (next.rank !== current.rank) return next.rank > current.rank ? 'apply' : 'ignore';
  return isNoOlderAndNoLessProgress(current, next) ? 'apply' : 'ignore';
}

function isNoOlderAndNoLessProgress(current: FoldFacts, next: FoldFacts): boolean {
  if (next.observedAtSec < current.observedAtSec) return false;
  if (next.logsLength < current.logsLength) return false;
  const comparableOutput = next.outputKind === current.outputKind && next.outputKind !== 'other';
  return !comparableOutput || next.outputLength >= current.outputLength;
}
