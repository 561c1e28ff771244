/**
 * What both dialects share: the read SQL, with `?` placeholders (`numberPlaceholders` turns them into
 * `$1…`), the column lists and parameter orders each dialect's writer builds on, and row → record
 * mappers that accept what any driver returns (numbers as number, bigint or string; bytes as Buffer or
 * Uint8Array). The commit statements live with each writer (sqlite/commit-sql.ts, postgres/postgres-writer.ts).
 */
import type { OutputKind } from '../replicate/fold.js';
import type { ObjectKind, ReplicateObject } from '../replicate/types.js';
import type { NewTransition, ObjectState } from './object-state.js';
import type { TransitionLog, TransitionQuery, TransitionRecord, TransitionType } from './transition-types.js';
import type {
  DeliveryMinute,
  EventDetailRecord,
  EventRecord,
  IncomingEvent,
  NewRejection,
  ObjectRecord,
  Page,
  ObjectSummaryRecord,
  PredictionQuery,
  RejectionRecord,
  Scheme,
  SeqQuery,
} from './types.js';

export type SqlValue = string | number | bigint | Buffer | null;
export interface SqlQuery {
  sql: string;
  params: SqlValue[];
}

// ---- what the writers write ----

/** An event as `events` values: key, object id, status, scheme, received at, webhook ts, headers, body. */
export function insertEventParams(event: IncomingEvent): SqlValue[] {
  return [
    event.key,
    event.object.id,
    event.object.status,
    event.scheme,
    event.receivedAtMs,
    event.webhookTimestampSec,
    JSON.stringify(event.headers),
    event.body,
  ];
}

/** The `objects` columns that hold an `ObjectState`, in the one order every statement writes them. */
export const OBJECT_STATE_COLUMNS = [
  'id',
  'kind',
  'status',
  'status_rank',
  'model',
  'observed_at',
  'logs_len',
  'output_kind',
  'output_len',
  'winning_event_key',
  'event_count',
  'conflict_count',
  'first_received_at',
  'last_received_at',
  'output_digest',
] as const;
export type ObjectStateColumn = (typeof OBJECT_STATE_COLUMNS)[number];

/** An `ObjectState` as values in `OBJECT_STATE_COLUMNS` order. */
export function objectStateValues(state: ObjectState): SqlValue[] {
  const { facts } = state;
  return [
    state.id,
    state.kind,
    facts.status,
    facts.rank,
    state.model,
    facts.observedAtSec,
    facts.logsLength,
    facts.outputKind,
    facts.outputLength,
    state.winningEventKey,
    state.eventCount,
    state.conflictCount,
    state.firstReceivedAtMs,
    state.lastReceivedAtMs,
    state.outputDigest,
  ];
}

export interface ObjectStateRow {
  id: string;
  kind: string;
  status: string;
  status_rank: unknown;
  model: string | null;
  observed_at: unknown;
  logs_len: unknown;
  output_kind: string;
  output_len: unknown;
  winning_event_key: string;
  event_count: unknown;
  conflict_count: unknown;
  first_received_at: unknown;
  last_received_at: unknown;
  output_digest: string | null;
}

export function objectStateFromRow(row: ObjectStateRow): ObjectState {
  return {
    id: row.id,
    kind: row.kind as ObjectKind,
    facts: {
      status: row.status,
      rank: toNumber(row.status_rank),
      observedAtSec: toNumber(row.observed_at),
      logsLength: toNumber(row.logs_len),
      outputKind: row.output_kind as OutputKind,
      outputLength: toNumber(row.output_len),
    },
    model: row.model,
    winningEventKey: row.winning_event_key,
    eventCount: toNumber(row.event_count),
    conflictCount: toNumber(row.conflict_count),
    firstReceivedAtMs: toNumber(row.first_received_at),
    lastReceivedAtMs: toNumber(row.last_received_at),
    outputDigest: row.output_digest ?? null,
  };
}

// ---- transitions (CONTRACT §8) ----

/** The `transitions` columns every insert writes, in `newTransitionValues` order. */
export const TRANSITION_COLUMNS = [
  'id',
  'type',
  'object_id',
  'kind',
  'model',
  'status',
  'event_key',
  'recorded_at',
  'event_count',
  'first_received_at',
  'last_received_at',
] as const;

export function newTransitionValues(transition: NewTransition, recordedAtMs: number): SqlValue[] {
  return [
    transition.id,
    transition.type,
    transition.objectId,
    transition.kind,
    transition.model,
    transition.status,
    transition.eventKey,
    recordedAtMs,
    transition.eventCount,
    transition.firstReceivedAtMs,
    transition.lastReceivedAtMs,
  ];
}

const TRANSITION_SELECT = `SELECT t.seq, t.id, t.type, t.object_id, t.kind, t.model, t.status, t.event_key,
  t.recorded_at, t.event_count, t.first_received_at, t.last_received_at, e.body
  FROM transitions t JOIN events e ON e.delivery_key = t.event_key`;

export function listTransitionsQuery(query: TransitionQuery): SqlQuery {
  const where = ['t.seq > ?'];
  const params: SqlValue[] = [query.afterSeq];
  if (query.objectIds !== undefined) {
    if (query.objectIds.length === 0) return { sql: `${TRANSITION_SELECT} WHERE 1 = 0`, params: [] };
    where.push(`t.object_id IN (${query.objectIds.map(() => '?').join(', ')})`);
    params.push(...query.objectIds);
  }
  if (query.sinceMs !== undefined) {
    where.push('t.recorded_at >= ?');
    params.push(query.sinceMs);
  }
  if (query.untilMs !== undefined) {
    where.push('t.recorded_at <= ?');
    params.push(query.untilMs);
  }
  params.push(query.limit);
  return { sql: `${TRANSITION_SELECT} WHERE ${where.join(' AND ')} ORDER BY t.seq LIMIT ?`, params };
}

/** Params: transition id. */
export const GET_TRANSITION_SQL = `${TRANSITION_SELECT} WHERE t.id = ?`;

export const LAST_TRANSITION_SEQ_SQL = 'SELECT COALESCE(MAX(seq), 0) AS seq FROM transitions';

export interface TransitionRow {
  seq: unknown;
  id: string;
  type: string;
  object_id: string;
  kind: string;
  model: string | null;
  status: string;
  event_key: string;
  recorded_at: unknown;
  event_count: unknown;
  first_received_at: unknown;
  last_received_at: unknown;
  body: Uint8Array;
}

export function transitionFromRow(row: TransitionRow): TransitionRecord {
  return {
    seq: toNumber(row.seq),
    id: row.id,
    type: row.type as TransitionType,
    objectId: row.object_id,
    kind: row.kind as ObjectKind,
    model: row.model,
    status: row.status,
    eventKey: row.event_key,
    recordedAtMs: toNumber(row.recorded_at),
    eventCount: toNumber(row.event_count),
    firstReceivedAtMs: toNumber(row.first_received_at),
    lastReceivedAtMs: toNumber(row.last_received_at),
    body: toBuffer(row.body),
  };
}

/** Reads the transitions log through a dialect's query function (`?` placeholders). */
export function transitionLogOver(
  all: <Row>(doing: string, query: SqlQuery) => Promise<Row[]>,
): TransitionLog {
  return {
    async listTransitions(query) {
      const rows = await all<TransitionRow>('listing transitions', listTransitionsQuery(query));
      return rows.map(transitionFromRow);
    },
    async lastTransitionSeq() {
      const [row] = await all<{ seq: unknown }>('reading the last transition', {
        sql: LAST_TRANSITION_SEQ_SQL,
        params: [],
      });
      return row === undefined ? 0 : toNumber(row.seq);
    },
    async getTransition(id) {
      const [row] = await all<TransitionRow>('reading a transition', {
        sql: GET_TRANSITION_SQL,
        params: [id],
      });
      return row === undefined ? undefined : transitionFromRow(row);
    },
  };
}

// ---- rejections ----

/** The `rejections` columns every insert writes, in `insertRejectionParams` order. */
export const REJECTION_INSERT_COLUMNS = [
  'id',
  'received_at',
  'code',
  'message',
  'remote_address',
  'headers',
  'body',
  'body_len',
] as const;

/** Inserts `rowCount` rejections; params: each row's `insertRejectionParams`, one after another. */
export function insertRejectionsSql(rowCount: number): string {
  const row = `(${REJECTION_INSERT_COLUMNS.map(() => '?').join(', ')})`;
  return `INSERT INTO rejections (${REJECTION_INSERT_COLUMNS.join(', ')}) VALUES ${Array.from({ length: rowCount }, () => row).join(', ')}`;
}

export function insertRejectionParams(id: string, row: NewRejection): SqlValue[] {
  return [
    id,
    row.receivedAtMs,
    row.code,
    row.message,
    row.remoteAddress,
    JSON.stringify(row.headers),
    row.body,
    row.body.length,
  ];
}

export const REJECTION_TOTALS_SQL =
  'SELECT COUNT(*) AS row_count, COALESCE(SUM(body_len), 0) AS body_bytes FROM rejections';

export interface RejectionTotalsRow {
  row_count: unknown;
  body_bytes: unknown;
}

/** Params: rows to keep. Deletes everything older than the newest `maxRows`. */
export const TRIM_REJECTIONS_BY_ROWS_SQL = `DELETE FROM rejections
  WHERE seq <= (SELECT seq FROM rejections ORDER BY seq DESC LIMIT 1 OFFSET ?)`;

/** Params: body bytes to keep. Deletes from the newest row whose running total (newest first) exceeds it. */
export const TRIM_REJECTIONS_BY_BYTES_SQL = `DELETE FROM rejections
  WHERE seq <= (
    SELECT MAX(seq) FROM (
      SELECT seq, SUM(body_len) OVER (ORDER BY seq DESC) AS running FROM rejections
    ) ranked
    WHERE running > ?
  )`;

// ---- read side ----

const SUMMARY_COLUMNS =
  'id, kind, status, model, event_count, conflict_count, first_received_at, last_received_at, summary';

/** LIKE pattern matching `text` literally anywhere, escaped with `\`. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

export function listPredictionsQuery(query: PredictionQuery): SqlQuery {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (query.statuses !== undefined && query.statuses.length > 0) {
    where.push(`status IN (${query.statuses.map(() => '?').join(', ')})`);
    params.push(...query.statuses);
  }
  if (query.model !== undefined) {
    where.push('model = ?');
    params.push(query.model);
  }
  if (query.q !== undefined) {
    const pattern = containsPattern(query.q.toLowerCase());
    where.push("(lower(id) LIKE ? ESCAPE '\\' OR lower(model) LIKE ? ESCAPE '\\')");
    params.push(pattern, pattern);
  }
  if (query.sinceMs !== undefined) {
    where.push('last_received_at >= ?');
    params.push(query.sinceMs);
  }
  if (query.untilMs !== undefined) {
    where.push('last_received_at <= ?');
    params.push(query.untilMs);
  }
  if (query.after !== undefined) {
    where.push('(last_received_at < ? OR (last_received_at = ? AND id < ?))');
    params.push(query.after.lastReceivedAtMs, query.after.lastReceivedAtMs, query.after.id);
  }
  // One extra row tells whether another page exists.
  params.push(query.limit + 1);
  const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')} ` : '';
  return {
    sql: `SELECT ${SUMMARY_COLUMNS} FROM objects ${whereSql}ORDER BY last_received_at DESC, id DESC LIMIT ?`,
    params,
  };
}

export const COUNT_PREDICTIONS_SQL = 'SELECT count(*) AS n FROM objects';

export const GET_PREDICTION_SQL = `SELECT o.id, o.kind, o.status, o.model, o.event_count, o.conflict_count,
  o.first_received_at, o.last_received_at, o.summary, o.winning_event_key, e.body AS winning_body
  FROM objects o JOIN events e ON e.delivery_key = o.winning_event_key
  WHERE o.id = ?`;

const EVENT_COLUMNS =
  'delivery_key, seq, object_id, received_at, webhook_ts, status, scheme, duplicates, conflict';

export function listEventsQuery(objectId: string, query: SeqQuery): SqlQuery {
  return {
    sql: `SELECT ${EVENT_COLUMNS} FROM events WHERE object_id = ? AND seq > ? ORDER BY seq LIMIT ?`,
    params: [objectId, query.after ?? 0, query.limit + 1],
  };
}

/** Params: delivery key. */
export const GET_EVENT_SQL = `SELECT ${EVENT_COLUMNS}, headers, body FROM events WHERE delivery_key = ?`;

/** What a list of rejections carries of each body: a summary, never the whole of a large body. */
export const REJECTION_LIST_BODY_BYTES = 64 * 1024;

const REJECTION_COLUMNS = 'id, seq, received_at, code, message, remote_address, headers, body_len';
/** `substr` counts bytes on a BLOB (SQLite) and a bytea (PostgreSQL) alike. */
const REJECTION_LIST_COLUMNS = `${REJECTION_COLUMNS}, substr(body, 1, ${REJECTION_LIST_BODY_BYTES}) AS body`;

/** Params: rejection id. The whole body. */
export const GET_REJECTION_SQL = `SELECT ${REJECTION_COLUMNS}, body FROM rejections WHERE id = ?`;

/** Newest first; each body cut to its first `REJECTION_LIST_BODY_BYTES` (`bodyBytes` tells the whole size). */
export function listRejectionsQuery(query: SeqQuery): SqlQuery {
  return query.after === undefined
    ? {
        sql: `SELECT ${REJECTION_LIST_COLUMNS} FROM rejections ORDER BY seq DESC LIMIT ?`,
        params: [query.limit + 1],
      }
    : {
        sql: `SELECT ${REJECTION_LIST_COLUMNS} FROM rejections WHERE seq < ? ORDER BY seq DESC LIMIT ?`,
        params: [query.after, query.limit + 1],
      };
}

export interface SummaryRow {
  id: string;
  kind: string;
  status: string;
  model: string | null;
  event_count: unknown;
  conflict_count: unknown;
  first_received_at: unknown;
  last_received_at: unknown;
  summary: string;
}

export interface PredictionRow extends SummaryRow {
  winning_event_key: string;
  winning_body: Uint8Array;
}

export interface EventRow {
  delivery_key: string;
  seq: unknown;
  object_id: string;
  received_at: unknown;
  webhook_ts: unknown;
  status: string;
  scheme: string;
  duplicates: unknown;
  conflict: unknown;
}

export interface EventDetailRow extends EventRow {
  headers: string;
  body: Uint8Array;
}

export interface RejectionRow {
  id: string;
  seq: unknown;
  received_at: unknown;
  code: string;
  message: string;
  remote_address: string;
  headers: string;
  body: Uint8Array;
  body_len: unknown;
}

export function summaryFromRow(row: SummaryRow): ObjectSummaryRecord {
  return {
    id: row.id,
    kind: row.kind as ObjectKind,
    status: row.status,
    model: row.model,
    eventCount: toNumber(row.event_count),
    conflictCount: toNumber(row.conflict_count),
    firstReceivedAtMs: toNumber(row.first_received_at),
    lastReceivedAtMs: toNumber(row.last_received_at),
    summary: JSON.parse(row.summary) as Record<string, unknown>,
  };
}

export function predictionFromRow(row: PredictionRow): ObjectRecord {
  return {
    ...summaryFromRow(row),
    object: JSON.parse(toBuffer(row.winning_body).toString('utf8')) as ReplicateObject,
    winningEventKey: row.winning_event_key,
  };
}

export function eventFromRow(row: EventRow): EventRecord {
  return {
    key: row.delivery_key,
    seq: toNumber(row.seq),
    objectId: row.object_id,
    receivedAtMs: toNumber(row.received_at),
    webhookTimestampSec: row.webhook_ts === null ? null : toNumber(row.webhook_ts),
    status: row.status,
    scheme: row.scheme as Scheme,
    duplicates: toNumber(row.duplicates),
    conflict: toNumber(row.conflict) !== 0,
  };
}

export function eventDetailFromRow(row: EventDetailRow): EventDetailRecord {
  return {
    ...eventFromRow(row),
    headers: JSON.parse(row.headers) as Record<string, string>,
    body: toBuffer(row.body),
  };
}

export function rejectionFromRow(row: RejectionRow): RejectionRecord {
  return {
    id: row.id,
    seq: toNumber(row.seq),
    receivedAtMs: toNumber(row.received_at),
    code: row.code,
    message: row.message,
    remoteAddress: row.remote_address,
    headers: JSON.parse(row.headers) as Record<string, string>,
    body: toBuffer(row.body),
    bodyBytes: toNumber(row.body_len),
  };
}

/** Splits the extra row fetched by the list queries off into `hasMore`. */
export function toPage<Row, T>(rows: Row[], limit: number, map: (row: Row) => T): Page<T> {
  return { items: rows.slice(0, limit).map(map), hasMore: rows.length > limit };
}

// ---- deliveries per minute (the dashboard's chart) ----

/** Params: since, until, since, until (epoch ms, until excluded). Integer division floors positive times. */
export const DELIVERIES_PER_MINUTE_SQL = `SELECT received_at / 60000 AS minute, count(*) AS accepted,
    sum(duplicates) AS duplicate, 0 AS rejected
  FROM events WHERE received_at >= ? AND received_at < ? AND scheme <> 'poll' GROUP BY 1
  UNION ALL
  SELECT received_at / 60000 AS minute, 0 AS accepted, 0 AS duplicate, count(*) AS rejected
  FROM rejections WHERE received_at >= ? AND received_at < ? GROUP BY 1`;

export interface DeliveryMinuteRow {
  minute: unknown;
  accepted: unknown;
  duplicate: unknown;
  rejected: unknown;
}

export function deliveriesPerMinuteQuery(sinceMs: number, untilMs: number): SqlQuery {
  return { sql: DELIVERIES_PER_MINUTE_SQL, params: [sinceMs, untilMs, sinceMs, untilMs] };
}

/** Rows of both tables merged into one entry per minute, oldest first. */
export function deliveryMinutesFromRows(rows: readonly DeliveryMinuteRow[]): DeliveryMinute[] {
  const byMinute = new Map<number, DeliveryMinute>();
  for (const row of rows) {
    const minuteMs = toNumber(row.minute) * 60_000;
    const entry = byMinute.get(minuteMs) ?? { minuteMs, accepted: 0, duplicate: 0, rejected: 0 };
    entry.accepted += toNumber(row.accepted);
    entry.duplicate += toNumber(row.duplicate ?? 0);
    entry.rejected += toNumber(row.rejected);
    byMinute.set(minuteMs, entry);
  }
  return [...byMinute.values()].sort((a, b) => a.minuteMs - b.minuteMs);
}

export function toNumber(value: unknown): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'bigint' || typeof value === 'string') return Number(value);
  if (typeof value === 'boolean') return value ? 1 : 0;
  throw new TypeError(`Expected a number from the database, got ${typeof value}`);
}

function toBuffer(value: Uint8Array | null): Buffer {
  if (value === null) return Buffer.alloc(0);
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** `?` → `$1, $2, …` for drivers with numbered placeholders (our SQL has no `?` inside literals). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}
