import type { ObjectKind } from '../replicate/types.js';

/**
 * What reconcile and the archive keep (CONTRACT §11): the objects being polled, and the output files
 * copied out of Replicate.
 */

/** Why an object is polled: `inlet predict` created it, or its deliveries stopped before it ended. */
export const TRACK_SOURCES = ['predict', 'stale'] as const;
export type TrackSource = (typeof TRACK_SOURCES)[number];

export interface TrackedObject {
  id: string;
  kind: ObjectKind;
  source: TrackSource;
  createdAtMs: number;
  lastPolledAtMs: number | null;
  nextPollAtMs: number;
  attempts: number;
  done: boolean;
}

export interface NewTracked {
  id: string;
  kind: ObjectKind;
  source: TrackSource;
  createdAtMs: number;
  nextPollAtMs: number;
}

export interface PollUpdate {
  polledAtMs: number | null;
  nextPollAtMs: number;
  done: boolean;
  /** Counts one more poll (false when only rescheduled). */
  attempted: boolean;
}

export interface StaleQuery {
  /** Not terminal and no accepted delivery since this time. */
  quietSinceMs: number;
  /** First seen after this time (older ones are given up). */
  firstSeenAfterMs: number;
  nowMs: number;
  limit: number;
}

/** One URL of a succeeded object's output: archived, failing, or waiting for its first try. */
export interface ArchiveFileRecord {
  predictionId: string;
  /** JSON path into `output`: `output[0]`, `output.images[2]`. */
  path: string;
  sourceUrl: string;
  sha256: string | null;
  size: number | null;
  contentType: string | null;
  archivedAtMs: number | null;
  error: string | null;
  attempts: number;
  /** When the next try is due; null once archived or given up. */
  nextAttemptAtMs: number | null;
}

export interface NewArchiveFile {
  predictionId: string;
  path: string;
  sourceUrl: string;
  nextAttemptAtMs: number;
}

export type ArchiveResult =
  | { ok: true; sha256: string; size: number; contentType: string; archivedAtMs: number }
  | { ok: false; error: string; nextAttemptAtMs: number | null };

/** A succeeded object the archive has not looked at yet. */
export interface ArchiveCandidate {
  id: string;
  lastReceivedAtMs: number;
}

export interface RecoverStore {
  /** Starts tracking an object (a second call for the same id changes nothing). */
  track(row: NewTracked): Promise<void>;
  getTracked(id: string): Promise<TrackedObject | undefined>;
  /** Tracks every stale object (not terminal, quiet since `quietSinceMs`) that is not tracked yet; answers how many. */
  trackStale(query: StaleQuery): Promise<number>;
  /** Tracked objects not done whose next poll is due, soonest first. */
  listDuePolls(nowMs: number, limit: number): Promise<TrackedObject[]>;
  updatePoll(id: string, update: PollUpdate): Promise<void>;

  /** Succeeded objects received since `sinceMs` that have no archive scan yet, oldest first. */
  listArchiveCandidates(sinceMs: number, limit: number): Promise<ArchiveCandidate[]>;
  /** Records the scan of one object and its files (existing rows are kept). */
  addArchiveFiles(predictionId: string, files: readonly NewArchiveFile[], nowMs: number): Promise<void>;
  listArchiveFiles(predictionId: string): Promise<ArchiveFileRecord[]>;
  listDueArchiveFiles(nowMs: number, limit: number): Promise<ArchiveFileRecord[]>;
  recordArchiveResult(predictionId: string, path: string, result: ArchiveResult): Promise<void>;
  /** One archived file with this content hash, for serving it. */
  findArchivedFile(sha256: string): Promise<ArchiveFileRecord | undefined>;
}
