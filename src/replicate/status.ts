/** Replicate's prediction/training statuses and their fold rank (CONTRACT §4). */
export const KNOWN_STATUSES = [
  'starting',
  'processing',
  'succeeded',
  'failed',
  'canceled',
  'aborted',
] as const;
export type KnownStatus = (typeof KNOWN_STATUSES)[number];

export const TERMINAL_STATUSES = ['succeeded', 'failed', 'canceled', 'aborted'] as const;
export type TerminalStatus = (typeof TERMINAL_STATUSES)[number];

const UNKNOWN_RANK = -1;
export const TERMINAL_RANK = 2;

/** Unknown statuses rank -1 so they never replace a known one. */
export function statusRank(status: string): number {
  switch (status) {
    case 'starting':
      return 0;
    case 'processing':
      return 1;
    case 'succeeded':
    case 'failed':
    case 'canceled':
    case 'aborted':
      return TERMINAL_RANK;
    default:
      return UNKNOWN_RANK;
  }
}

export function isTerminalStatus(status: string): status is TerminalStatus {
  return statusRank(status) === TERMINAL_RANK;
}
