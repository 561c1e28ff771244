import type { ObjectKind, ReplicateObject } from '../replicate/types.js';
import type { JobStore } from './job-types.js';
import type { RecoverStore } from './recover-types.js';
import type { RetentionStore } from './retention-types.js';
import type { TransitionLog } from './transition-types.js';

/** How a delivery was authenticated (CONTRACT §5). `poll` is reserved for the reconciler. */
export const SCHEMES = ['standard', 'hex', 'unsigned', 'poll'] as const;
export type Scheme = (typeof SCHEMES)[number];

/** One accepted delivery, verified and parsed, ready to commit. */
export interface IncomingEvent {
  /** The delivery key (CONTRACT §3): `webhook-id`, or `sha256:<hex>` of the body. */
  key: string;
  scheme: Scheme;
  receivedAtMs: number;
  /** `webhook-timestamp` in whole seconds, when the delivery had one. */
  webhookTimestampSec: number | null;
  /** Request headers with lower-case names, signatures already redacted. */
  headers: Record<string, string>;
  /** The raw body, byte-exact. */
  body: Buffer;
  /** The parsed body (a JSON object with non-empty string `id` and `status`). */
  object: ReplicateObject;
}

export interface CommitOutcome {
  /** The delivery key was already stored; only its duplicate counter moved. */
  duplicate: boolean;
  /** The event replaced the folded state. */
  applied: boolean;
  /** A terminal event disagreeing with an earlier terminal status (kept, never applied). */
  conflict: boolean;
}

export interface NewRejection {
  receivedAtMs: number;
  code: string;
  message: string;
  remoteAddress: string;
  /** Lower-case names, redacted. */
  headers: Record<string, string>;
  /** Already cut to what is kept (64 KiB, or whole for authenticated invalid_json/invalid_payload). */
  body: Buffer;
}

export interface RejectionLimits {
  /** Newest rows kept (INLET_MAX_REJECTIONS). */
  maxRows: number;
  /** Sum of kept bodies, newest first. */
  maxBodyBytes: number;
}

/** Keyset pages: the store fetches `limit` rows after `after` and says whether more exist. */
export interface Page<T> {
  items: T[];
  hasMore: boolean;
}

export interface PredictionKeyset {
  lastReceivedAtMs: number;
  id: string;
}

export interface PredictionQuery {
  statuses?: readonly string[];
  model?: string;
  /** Case-insensitive substring of id or model. */
  q?: string;
  sinceMs?: number;
  untilMs?: number;
  limit: number;
  after?: PredictionKeyset;
}

export interface SeqQuery {
  limit: number;
  /** The `seq` of the last row of the previous page. */
  after?: number;
}

/** One folded object as listed: no input, output or logs. */
export interface ObjectSummaryRecord {
  id: string;
  kind: ObjectKind;
  status: string;
  model: string | null;
  eventCount: number;
  conflictCount: number;
  firstReceivedAtMs: number;
  lastReceivedAtMs: number;
  /** The folded object minus `input`, `output` and `logs`. */
  summary: Record<string, unknown>;
}

export interface ObjectRecord extends ObjectSummaryRecord {
  /** The folded object: exactly the winning event's body. */
  object: ReplicateObject;
  winningEventKey: string;
}

export interface EventRecord {
  key: string;
  seq: number;
  objectId: string;
  receivedAtMs: number;
  webhookTimestampSec: number | null;
  status: string;
  scheme: Scheme;
  duplicates: number;
  conflict: boolean;
}

export interface EventDetailRecord extends EventRecord {
  headers: Record<string, string>;
  body: Buffer;
}

export interface RejectionRecord {
  id: string;
  seq: number;
  receivedAtMs: number;
  code: string;
  message: string;
  remoteAddress: string;
  headers: Record<string, string>;
  /** In a list, only the first 64 KiB (`bodyBytes` is the whole size); whole from `getRejection`. */
  body: Buffer;
  bodyBytes: number;
}

/** Webhook deliveries received in one minute, by what became of them (the dashboard's chart). */
export interface DeliveryMinute {
  /** The minute's start, epoch ms (a multiple of 60,000). */
  minuteMs: number;
  /** Stored as new deliveries (polls are not deliveries and are not counted). */
  accepted: number;
  /** Repeats of a stored delivery, counted in the minute the first one arrived (no time is kept per repeat). */
  duplicate: number;
  /** Refused and kept in the rejections log. */
  rejected: number;
}

/** What differs between dialects, as flags (never `if (postgres)` outside store/); each dialect's are in dialects.ts. */
export interface StoreCapabilities {
  /** How many group commits may run at once (SQLite has one writer). */
  readonly maxConcurrentCommits: number;
  /**
   * Commits over a common object wait for each other in the store (PostgreSQL's row locks): the
   * batcher then keeps an object's deliveries out of new batches while one of its batches commits, so
   * that a batch never holds a commit slot waiting on another, and the rest of the queue goes on.
   */
  readonly oneCommitPerObject?: boolean;
  /**
   * While a commit runs, another starts only once this many deliveries wait (unset: as soon as one
   * waits). Below it they wait for the running commit and go together in the next: fewer, larger
   * commits, where each commit costs round trips and a lock shared by every commit (PostgreSQL's).
   */
  readonly concurrentCommitBacklog?: number;
  /** Several processes may share this store (PostgreSQL). */
  readonly multiInstance: boolean;
  /** Claims skip rows another transaction holds (`FOR UPDATE SKIP LOCKED`). */
  readonly skipLocked: boolean;
  /** Commits wake other processes' job runners (`LISTEN`/`NOTIFY`); otherwise `watchTransitions` is a no-op. */
  readonly crossProcessNotify: boolean;
}

/** What every store is and does whatever it is used for: where it lives, what it can, and its life. */
export interface StoreLifecycle {
  readonly dialect: string;
  readonly capabilities: StoreCapabilities;
  /** Where the data lives, for messages (a file path, or a URL without its password). */
  readonly location: string;
  /** Resolves when the store answers a trivial query; throws `StoreUnavailableError` otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What ingest writes through. */
export interface IngestStore {
  /**
   * Commits every event in one transaction: insert (dedupe on key), fold, all or nothing.
   * Returns one outcome per event, in order. Repeated keys inside one batch: the first is stored,
   * later ones count as duplicates. Throws `StoreUnavailableError` when it cannot commit now.
   */
  commitEvents(events: readonly IncomingEvent[]): Promise<CommitOutcome[]>;
  /** Appends rejections and trims the log to its limits. */
  recordRejections(rows: readonly NewRejection[], limits: RejectionLimits): Promise<void>;
  /**
   * Resolves when a write through the commit path works now, leaving nothing behind (readiness when no
   * delivery was committed lately); throws what a commit would throw otherwise.
   */
  probeWrite(): Promise<void>;
  /** How batches were committed so far, on a store with more than one way (PostgreSQL's). */
  readonly commitPaths?: CommitPaths;
}

/**
 * PostgreSQL's group commits by path: `guessed` (one round trip, folded on the states this instance
 * last wrote), `locked` (the objects' rows locked and read first), and `staleGuesses`, guesses that
 * were wrong (rolled back, then committed the locked way, so counted in `locked` too).
 */
export interface CommitPaths {
  readonly guessed: number;
  readonly locked: number;
  readonly staleGuesses: number;
}

/** What the API, the dashboard and the CLI read. */
export interface ReadStore {
  listPredictions(query: PredictionQuery): Promise<Page<ObjectSummaryRecord>>;
  /** How many predictions and trainings are stored, whatever their state. */
  countPredictions(): Promise<number>;
  getPrediction(id: string): Promise<ObjectRecord | undefined>;
  /** Events of one object in the order received. */
  listEvents(objectId: string, query: SeqQuery): Promise<Page<EventRecord>>;
  getEvent(key: string): Promise<EventDetailRecord | undefined>;
  /** Newest first; `after` is the seq of the last row seen. Bodies cut to their first 64 KiB. */
  listRejections(query: SeqQuery): Promise<Page<RejectionRecord>>;
  /** One rejection with its whole body. */
  getRejection(id: string): Promise<RejectionRecord | undefined>;
  /** Minutes in `[sinceMs, untilMs)` that saw a delivery or a rejection, oldest first. */
  deliveriesPerMinute(sinceMs: number, untilMs: number): Promise<DeliveryMinute[]>;
}

/** The parts with their own interfaces. */
export interface StoreParts {
  /** The transitions log ingest appends to (CONTRACT §8). */
  readonly transitions: TransitionLog;
  /** Consumers, messages and attempts (CONTRACT §8, §9). */
  readonly jobs: JobStore;
  /** Reconcile's tracked objects and the archive's files (CONTRACT §11). */
  readonly recover: RecoverStore;
  /** Deleting what is older than a cutoff, in small windows (CONTRACT §13). */
  readonly retention: RetentionStore;
}

/** Every role in one object, as `openStore` returns it. */
export interface Store extends StoreLifecycle, IngestStore, ReadStore, StoreParts {}
