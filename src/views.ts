import { SUMMARY_OMITTED_FIELDS } from './replicate/types.js';
import { encodePredictionCursor } from './store/cursor.js';
import type { TransitionRecord } from './store/transition-types.js';
import type {
  EventDetailRecord,
  EventRecord,
  ObjectRecord,
  ObjectSummaryRecord,
  Page,
  RejectionRecord,
} from './store/types.js';

/** The JSON shapes of CONTRACT §5, shared by the admin API and the CLI's `--json`. */

export function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}

/** Replicate's fields always shown (null when the body lacks them); `data_removed` only where present. */
const REPLICATE_FIELDS = [
  'id',
  'model',
  'version',
  'status',
  'input',
  'output',
  'error',
  'logs',
  'metrics',
  'created_at',
  'started_at',
  'completed_at',
  'urls',
] as const;

/**
 * Sets an own property whatever its name: `out[name] = value` would set the prototype for `__proto__`
 * (and the field would vanish from the JSON), and `name in out` is true for `constructor`, `toString`….
 */
function setOwn(out: Record<string, unknown>, name: string, value: unknown): void {
  Object.defineProperty(out, name, { value, enumerable: true, writable: true, configurable: true });
}

function withReplicateFields(source: Record<string, unknown>, skipHeavy: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of REPLICATE_FIELDS) {
    if (skipHeavy && SUMMARY_OMITTED_FIELDS.has(field)) continue;
    out[field] = (Object.hasOwn(source, field) ? source[field] : undefined) ?? null;
  }
  for (const [field, value] of Object.entries(source)) {
    if (skipHeavy && SUMMARY_OMITTED_FIELDS.has(field)) continue;
    if (!Object.hasOwn(out, field)) setOwn(out, field, value);
  }
  return out;
}

function inletFields(
  record: Pick<ObjectSummaryRecord, 'kind' | 'eventCount' | 'firstReceivedAtMs' | 'lastReceivedAtMs'>,
): Record<string, unknown> {
  return {
    kind: record.kind,
    event_count: record.eventCount,
    first_received_at: isoTime(record.firstReceivedAtMs),
    last_received_at: isoTime(record.lastReceivedAtMs),
  };
}

export function predictionSummaryView(record: ObjectSummaryRecord): Record<string, unknown> {
  return {
    ...withReplicateFields(record.summary, true),
    id: record.id,
    status: record.status,
    ...inletFields(record),
  };
}

export function predictionView(record: ObjectRecord): Record<string, unknown> {
  return { ...withReplicateFields(record.object, false), ...inletFields(record) };
}

/**
 * The folded object as it was right after a transition, shaped as `GET /api/predictions/:id` shows it:
 * the `data` of every message (HTTP destinations and library handlers alike).
 */
export function transitionDataView(record: TransitionRecord): Record<string, unknown> {
  const object = JSON.parse(record.body.toString('utf8')) as Record<string, unknown>;
  return {
    ...withReplicateFields(object, false),
    ...inletFields({
      kind: record.kind,
      eventCount: record.eventCount,
      firstReceivedAtMs: record.firstReceivedAtMs,
      lastReceivedAtMs: record.lastReceivedAtMs,
    }),
  };
}

export function eventView(record: EventRecord): Record<string, unknown> {
  return {
    id: record.key,
    received_at: isoTime(record.receivedAtMs),
    status: record.status,
    scheme: record.scheme,
    duplicates: record.duplicates,
    conflict: record.conflict,
  };
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenientUtf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** `body` when the bytes are valid UTF-8 (byte-exact), else `body_base64`. */
function bodyFields(body: Buffer): { body: string } | { body_base64: string } {
  try {
    return { body: strictUtf8.decode(body) };
  } catch {
    return { body_base64: body.toString('base64') };
  }
}

export function eventDetailView(record: EventDetailRecord): Record<string, unknown> {
  return {
    ...eventView(record),
    prediction_id: record.objectId,
    headers: record.headers,
    ...bodyFields(record.body),
  };
}

export function rejectionView(record: RejectionRecord): Record<string, unknown> {
  return {
    id: record.id,
    received_at: isoTime(record.receivedAtMs),
    code: record.code,
    message: record.message,
    remote_address: record.remoteAddress,
    headers: record.headers,
    // Always a readable `body` (a 64 KiB cut may split a character); exact bytes too when not UTF-8.
    body: lenientUtf8.decode(record.body),
    ...('body_base64' in bodyFields(record.body) ? { body_base64: record.body.toString('base64') } : {}),
  };
}

/** `GET /api/predictions`: `{data, next_cursor}` with a keyset cursor after the last row. */
export function predictionPageView(page: Page<ObjectSummaryRecord>): {
  data: Record<string, unknown>[];
  next_cursor: string | null;
} {
  const last = page.items.at(-1);
  return {
    data: page.items.map(predictionSummaryView),
    next_cursor:
      page.hasMore && last
        ? encodePredictionCursor({ lastReceivedAtMs: last.lastReceivedAtMs, id: last.id })
        : null,
  };
}
