import type { Logger } from 'pino';
import type { InletMetrics } from '../metrics/metrics.js';
import type { IngestStore, NewRejection, RejectionLimits } from '../store/types.js';

/** How much of the rejection log one source (client address) may fill: a token bucket per source. */
export interface RejectionRates {
  /** Rejections recorded per second, per source (also the burst). */
  perSecond: number;
  /** Body bytes recorded per second, per source (also the burst; one larger body may overdraw it). */
  bytesPerSecond: number;
}

const DEFAULT_REJECTION_RATES: RejectionRates = { perSecond: 10, bytesPerSecond: 256 * 1024 };

/** Sources tracked at once; beyond, new sources share one bucket (a flood from many addresses). */
const MAX_SOURCES = 10_000;
/** How often the count of rejections not recorded is logged, per source. */
const REPORT_INTERVAL_MS = 10_000;
/** Sources named in one report line (the busiest); the rest are summed. */
const REPORT_TOP = 20;

interface Bucket {
  count: number;
  bytes: number;
  atMs: number;
}

/**
 * `bytes` on memory of its own: a slice would keep its whole parent (a request body of up to --max-body,
 * a socket read buffer) alive as long as the rejection waits for the disk.
 */
function detached(bytes: Buffer): Buffer {
  return bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.length ? bytes : Buffer.from(bytes);
}

/**
 * The rate key of an address: IPv6 clients by their /64 (one host usually holds a whole /64), others as
 * they are.
 */
export function sourceKey(address: string): string {
  if (!address.includes(':') || address.includes('.')) return address;
  const [head = '', tail] = address.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups =
    tail === undefined
      ? left
      : [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g || '0', 16).toString(16))
    .join(':')}::/64`;
}

/**
 * Writes rejected requests to the bounded log in the background: a 4xx answer never waits for the
 * disk, and a store outage never turns a 4xx into something else. Each source may fill it only at a
 * bounded rate (count and bytes); beyond, its rejections are counted (a metric and a log line every
 * 10 s per source), not stored, so a flood of forged requests neither slows real deliveries down nor
 * grows the database.
 */
export class RejectionLog {
  readonly #store: Pick<IngestStore, 'recordRejections'>;
  readonly #limits: RejectionLimits;
  readonly #logger: Logger;
  readonly #metrics: InletMetrics | undefined;
  readonly #rates: RejectionRates;
  readonly #now: () => number;
  #queue: NewRejection[] = [];
  #writing: Promise<void> | undefined;
  /** Kept in memory at most while the store is away; the oldest are dropped beyond it. */
  readonly #maxQueued = 1000;
  /** And at most this many body bytes (authenticated bodies are kept whole, up to --max-body each). */
  readonly #maxQueuedBytes = 64 * 1024 * 1024;
  #queuedBytes = 0;
  readonly #buckets = new Map<string, Bucket>();
  /** Rejections not recorded since the last report, per source. */
  #limited = new Map<string, number>();
  #reportTimer: NodeJS.Timeout | undefined;

  constructor(
    store: Pick<IngestStore, 'recordRejections'>,
    limits: RejectionLimits,
    logger: Logger,
    metrics?: InletMetrics,
    options: { rates?: RejectionRates; nowMs?: () => number } = {},
  ) {
    this.#store = store;
    this.#limits = limits;
    this.#logger = logger;
    this.#metrics = metrics;
    this.#rates = options.rates ?? DEFAULT_REJECTION_RATES;
    this.#now = options.nowMs ?? Date.now;
  }

  /**
   * Queues the rejection for the log when its source is within its budget, with a copy of its body (the
   * caller may pass a slice of a large request body). Past the budget it is only counted, and the answer
   * is true: the caller answers the sender the same either way, but need not log it one by one.
   */
  record(given: NewRejection): boolean {
    if (this.#limits.maxRows === 0) return false;
    if (!this.#withinBudget(given)) return true;
    const rejection = { ...given, body: detached(given.body) };
    this.#queue.push(rejection);
    this.#queuedBytes += rejection.body.length;
    while (
      this.#queue.length > 1 &&
      (this.#queue.length > this.#maxQueued || this.#queuedBytes > this.#maxQueuedBytes)
    ) {
      this.#queuedBytes -= this.#queue.shift()!.body.length;
      this.#metrics?.rejectionsDropped(1);
    }
    this.#writing ??= this.#write();
    return false;
  }

  /** Waits for queued rejections to be written, and logs what was counted but not recorded. */
  async flush(): Promise<void> {
    while (this.#writing !== undefined) await this.#writing;
    this.#report();
  }

  #withinBudget(rejection: NewRejection): boolean {
    const now = this.#now();
    const source = sourceKey(rejection.remoteAddress);
    let key = source;
    let bucket = this.#buckets.get(key);
    if (bucket === undefined) {
      if (this.#buckets.size >= MAX_SOURCES) this.#prune(now);
      if (this.#buckets.size >= MAX_SOURCES) key = '*';
      bucket = this.#buckets.get(key) ?? {
        count: this.#rates.perSecond,
        bytes: this.#rates.bytesPerSecond,
        atMs: now,
      };
      this.#buckets.set(key, bucket);
    }
    const seconds = Math.max(0, now - bucket.atMs) / 1000;
    bucket.count = Math.min(this.#rates.perSecond, bucket.count + seconds * this.#rates.perSecond);
    bucket.bytes = Math.min(this.#rates.bytesPerSecond, bucket.bytes + seconds * this.#rates.bytesPerSecond);
    bucket.atMs = now;
    // A body larger than the byte budget may still go when the budget is full: it overdraws it, and the
    // source then waits until it is paid back.
    if (bucket.count >= 1 && bucket.bytes > 0) {
      bucket.count -= 1;
      bucket.bytes -= rejection.body.length;
      return true;
    }
    this.#metrics?.rejectionsLimited(1);
    this.#limited.set(source, (this.#limited.get(source) ?? 0) + 1);
    this.#reportTimer ??= setInterval(() => this.#report(), REPORT_INTERVAL_MS).unref();
    return false;
  }

  /** Forgets sources whose buckets have refilled: they are as good as new. */
  #prune(now: number): void {
    const { perSecond, bytesPerSecond } = this.#rates;
    for (const [key, bucket] of this.#buckets) {
      const refillSec = Math.max(
        (perSecond - bucket.count) / perSecond,
        (bytesPerSecond - bucket.bytes) / bytesPerSecond,
      );
      if (now - bucket.atMs >= refillSec * 1000) this.#buckets.delete(key);
    }
  }

  #report(): void {
    if (this.#limited.size === 0) {
      if (this.#reportTimer !== undefined) clearInterval(this.#reportTimer);
      this.#reportTimer = undefined;
      this.#prune(this.#now());
      return;
    }
    const counts = [...this.#limited].sort((a, b) => b[1] - a[1]);
    this.#limited = new Map();
    const total = counts.reduce((sum, [, n]) => sum + n, 0);
    const sources = Object.fromEntries(counts.slice(0, REPORT_TOP));
    const others = counts.slice(REPORT_TOP).reduce((sum, [, n]) => sum + n, 0);
    this.#logger.warn(
      { notRecorded: total, sources, ...(others > 0 ? { otherSources: others } : {}) },
      `${total} rejected requests not recorded in the rejection log: their sources passed ` +
        `${this.#rates.perSecond} rejections or ${this.#rates.bytesPerSecond} bytes per second ` +
        '(--rejections-per-second, --rejection-bytes-per-second); each was answered as usual',
    );
  }

  async #write(): Promise<void> {
    await new Promise((resolve) => setImmediate(resolve));
    const rows = this.#queue;
    this.#queue = [];
    this.#queuedBytes = 0;
    try {
      await this.#store.recordRejections(rows, this.#limits);
      this.#metrics?.rejectionsRecorded(rows.length);
    } catch (error) {
      this.#metrics?.storeError('record_rejections');
      this.#metrics?.rejectionsDropped(rows.length);
      this.#logger.warn(
        { err: (error as Error).message, dropped: rows.length },
        'could not record rejections',
      );
    } finally {
      this.#writing = undefined;
      if (this.#queue.length > 0) this.#writing = this.#write();
    }
  }
}
