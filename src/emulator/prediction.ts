import type { KnownStatus } from '../replicate/status.js';
import type { ModelStep } from './models.js';

export const WEBHOOK_EVENTS = ['start', 'output', 'logs', 'completed'] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** Replicate's default when `webhook_events_filter` is omitted: new outputs, and the end. */
export const DEFAULT_EVENTS_FILTER: readonly WebhookEvent[] = ['output', 'completed'];

/** `output` and `logs` webhooks: at most one per this interval per prediction (before the time scale). */
export const THROTTLE_MS = 500;

export function isWebhookEvent(value: unknown): value is WebhookEvent {
  return typeof value === 'string' && (WEBHOOK_EVENTS as readonly string[]).includes(value);
}

export const OBJECT_KINDS = ['prediction', 'training'] as const;
export type EmulatedKind = (typeof OBJECT_KINDS)[number];

/** The emulator's own state of one prediction or training; `toPublicObject` makes Replicate's JSON. */
export interface PredictionRecord {
  readonly id: string;
  readonly kind: EmulatedKind;
  /** Creation order, for newest-first lists. */
  readonly seq: number;
  readonly model: string;
  readonly version: string;
  input: Record<string, unknown>;
  output: unknown;
  logs: string;
  error: string | null;
  status: KnownStatus;
  readonly createdAtMs: number;
  startedAtMs: number | null;
  completedAtMs: number | null;
  readonly webhook: string | undefined;
  readonly webhookEventsFilter: readonly WebhookEvent[];
  readonly deadlineMs: number | null;
  readonly deployment: string | undefined;
  readonly streams: boolean;
  dataRemoved: boolean;
}

/** What ends a run that the model's own script does not: a cancel request or a passed deadline. */
export type EndStep = { readonly kind: 'cancel' } | { readonly kind: 'abort' };

/** RFC 3339 with microseconds, as Replicate writes its times. */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace(/Z$/, '000Z');
}

function seconds(ms: number): number {
  return Math.round(ms) / 1000;
}

/** The prediction (or training) JSON exactly as `GET /v1/predictions/{id}` and webhooks carry it. */
export function toPublicObject(record: PredictionRecord, origin: string): Record<string, unknown> {
  const base =
    record.kind === 'training'
      ? `${origin}/v1/trainings/${record.id}`
      : `${origin}/v1/predictions/${record.id}`;
  const urls: Record<string, string> = { cancel: `${base}/cancel`, get: base };
  if (record.streams) urls.stream = `${origin}/stream/${record.id}`;
  urls.web = `${origin}/p/${record.id}`;
  const metrics: Record<string, number> = {};
  if (record.completedAtMs !== null) {
    if (record.startedAtMs !== null)
      metrics.predict_time = seconds(record.completedAtMs - record.startedAtMs);
    metrics.total_time = seconds(record.completedAtMs - record.createdAtMs);
  }
  const object: Record<string, unknown> = {
    id: record.id,
    model: record.model,
    version: record.version,
    input: record.input,
    logs: record.logs,
    output: record.output,
    data_removed: record.dataRemoved,
    error: record.error,
    status: record.status,
    created_at: formatTime(record.createdAtMs),
    started_at: record.startedAtMs === null ? null : formatTime(record.startedAtMs),
    completed_at: record.completedAtMs === null ? null : formatTime(record.completedAtMs),
    urls,
    metrics,
    source: 'api',
  };
  if (record.deployment !== undefined) object.deployment = record.deployment;
  if (record.deadlineMs !== null) object.deadline = formatTime(record.deadlineMs);
  if (record.webhook !== undefined) {
    object.webhook = record.webhook;
    object.webhook_events_filter = record.webhookEventsFilter;
  }
  return object;
}

export function isTerminal(record: PredictionRecord): boolean {
  return record.completedAtMs !== null;
}

/**
 * Applies one step of a run to the record; returns which webhook events the change raises
 * (none when the record is already terminal: nothing changes after the end).
 */
export function applyStep(
  record: PredictionRecord,
  step: ModelStep | EndStep,
  nowMs: number,
): WebhookEvent[] {
  if (isTerminal(record)) return [];
  const finish = (status: KnownStatus): WebhookEvent[] => {
    record.status = status;
    record.completedAtMs = nowMs;
    return ['completed'];
  };
  switch (step.kind) {
    case 'start':
      if (record.startedAtMs !== null) return [];
      record.status = 'processing';
      record.startedAtMs = nowMs;
      return ['start'];
    case 'log':
      record.logs += step.text;
      return ['logs'];
    case 'output':
      record.output = step.output;
      return ['output'];
    case 'succeed':
      return finish('succeeded');
    case 'fail':
      record.error = step.error;
      return finish('failed');
    case 'cancel':
      return finish('canceled');
    case 'abort':
      return finish('aborted');
  }
}

/**
 * Decides which changes become webhooks, by Replicate's rules: the filter, `start` once,
 * `output`/`logs` throttled (dropped, not queued), the terminal one always.
 */
export class WebhookGate {
  readonly #filter: ReadonlySet<WebhookEvent>;
  readonly #intervalMs: number;
  #lastIntermediateMs = Number.NEGATIVE_INFINITY;

  constructor(filter: readonly WebhookEvent[], intervalMs: number) {
    this.#filter = new Set(filter);
    this.#intervalMs = intervalMs;
  }

  /** The event a change is sent as, or `undefined` when it sends nothing. */
  select(events: readonly WebhookEvent[], nowMs: number): WebhookEvent | undefined {
    if (events.includes('completed')) return this.#filter.has('completed') ? 'completed' : undefined;
    if (events.includes('start')) return this.#filter.has('start') ? 'start' : undefined;
    const wanted = events.filter((e) => (e === 'output' || e === 'logs') && this.#filter.has(e));
    const first = wanted[0];
    if (first === undefined) return undefined;
    if (nowMs - this.#lastIntermediateMs < this.#intervalMs) return undefined;
    this.#lastIntermediateMs = nowMs;
    return wanted.includes('output') ? 'output' : first;
  }
}
