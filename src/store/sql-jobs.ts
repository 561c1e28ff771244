/**
 * The job store's SQL, shared by both dialects (`?` placeholders; `numberPlaceholders` for PostgreSQL),
 * and the row → record mappers. The dialects differ only in how they lock (sqlite-jobs.ts,
 * postgres-jobs.ts).
 */
import type {
  AttemptOutcome,
  AttemptRecord,
  ConsumerKind,
  ConsumerCounts,
  ConsumerRecord,
  ConsumerStats,
  ConsumerUpsert,
  MessageQuery,
  MessageRecord,
  MessageState,
  NewMessage,
} from './job-types.js';
import { toNumber, type SqlQuery, type SqlValue } from './statements.js';

const CONSUMER_COLUMNS =
  'name, kind, position, enabled, disabled_reason, secret, config_hash, config, created_at, updated_at, last_delivered_at, last_error';

export const GET_CONSUMER_SQL = `SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE name = ?`;
export const LIST_CONSUMERS_SQL = `SELECT ${CONSUMER_COLUMNS} FROM consumers ORDER BY name`;
export const LIST_CONSUMERS_OF_KIND_SQL = `SELECT ${CONSUMER_COLUMNS} FROM consumers WHERE kind = ? ORDER BY name`;

export const INSERT_CONSUMER_SQL = `INSERT INTO consumers
  (name, kind, position, enabled, disabled_reason, secret, config_hash, config, created_at, updated_at)
  VALUES (?, ?, ?, 1, NULL, ?, ?, ?, ?, ?)
  ON CONFLICT (name) DO NOTHING`;

export function insertConsumerParams(c: ConsumerUpsert, secret: string | null): SqlValue[] {
  return [c.name, c.kind, c.startPosition, secret, c.configHash, JSON.stringify(c.config), c.nowMs, c.nowMs];
}

/** Params: kind, config hash, config, updated at, secret (null keeps the stored one), name. */
export const UPDATE_CONSUMER_SQL = `UPDATE consumers SET kind = ?, config_hash = ?, config = ?, updated_at = ?,
  secret = COALESCE(?, secret) WHERE name = ?`;

export function updateConsumerParams(c: ConsumerUpsert): SqlValue[] {
  return [c.kind, c.configHash, JSON.stringify(c.config), c.nowMs, c.secret ?? null, c.name];
}

/** Each with the param: consumer name. In this order, so no attempt or message outlives its consumer. */
export const DELETE_CONSUMER_SQL = [
  'DELETE FROM message_attempts WHERE message_id IN (SELECT id FROM messages WHERE consumer = ?)',
  'DELETE FROM messages WHERE consumer = ?',
  'DELETE FROM consumers WHERE name = ?',
] as const;

/** Params: new position, name, expected position. */
export const ADVANCE_POSITION_SQL =
  'UPDATE consumers SET position = ? WHERE name = ? AND position = ? AND enabled = 1';

export const INSERT_MESSAGE_SQL = `INSERT INTO messages
  (id, consumer, transition_seq, transition_id, object_id, type, recorded_at, state, attempts, round_attempts,
   next_attempt_at, created_at)
  VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?)
  ON CONFLICT (id) DO NOTHING`;

export function insertMessageParams(consumer: string, m: NewMessage, nowMs: number): SqlValue[] {
  return [m.id, consumer, m.transitionSeq, m.transitionId, m.objectId, m.type, m.recordedAtMs, nowMs, nowMs];
}

/** Params: now, id. A message being attempted keeps its lease; the new round starts after it. */
export const REQUEUE_MESSAGE_SQL = `UPDATE messages SET state = 'pending', round_attempts = 0, next_attempt_at = ?,
  delivered_at = NULL WHERE id = ?`;

const MESSAGE_COLUMNS =
  'seq, id, consumer, transition_seq, transition_id, object_id, type, recorded_at, state, attempts, round_attempts, next_attempt_at, lease_owner, lease_until, last_status, last_error, created_at, delivered_at';

export const GET_MESSAGE_SQL = `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE id = ?`;
export const LIST_ATTEMPTS_SQL =
  'SELECT at, status, duration_ms, error FROM message_attempts WHERE message_id = ? ORDER BY seq';

/** Params: consumer, now, now. The caller appends `ordered` and the limit. */
function dueMessagesWhere(ordered: boolean): string {
  // The partial indexes only apply when `state = 'pending'` is spelled out.
  return `m.consumer = ? AND m.state = 'pending' AND m.next_attempt_at <= ?
    AND (m.lease_until IS NULL OR m.lease_until <= ?)${
      ordered
        ? `
    AND NOT EXISTS (SELECT 1 FROM messages e WHERE e.consumer = m.consumer AND e.state = 'pending'
      AND e.object_id = m.object_id AND e.transition_seq < m.transition_seq)`
        : ''
    }`;
}

/** Params: consumer, now, now, limit. */
export function dueMessagesSql(ordered: boolean, lockClause = ''): string {
  // Ordered by the due index alone (a second key would sort every pending row on each claim); equal
  // times come in insertion order, which is transition order.
  return `SELECT m.seq FROM messages m WHERE ${dueMessagesWhere(ordered)}
    ORDER BY m.next_attempt_at LIMIT ?${lockClause}`;
}

/** Params: consumer, now. Leases held right now by any instance. */
export const COUNT_LEASED_SQL =
  "SELECT COUNT(*) AS n FROM messages WHERE consumer = ? AND lease_until > ? AND state = 'pending'";

/**
 * SQLite's claim after the count of leases: lease the due rows and answer them, in one statement
 * (RETURNING's order is not defined: the caller sorts by transition). Params: owner, lease until,
 * consumer, now, now, limit.
 */
export function leaseDueSql(ordered: boolean): string {
  return `UPDATE messages SET lease_owner = ?, lease_until = ? WHERE seq IN (${dueMessagesSql(ordered)})
    RETURNING ${MESSAGE_COLUMNS}`;
}

export const INSERT_ATTEMPT_SQL =
  'INSERT INTO message_attempts (message_id, at, status, duration_ms, error) VALUES (?, ?, ?, ?, ?)';

export function insertAttemptParams(o: AttemptOutcome): SqlValue[] {
  const a = o.attempt;
  return [o.messageId, a.atMs, a.status, a.durationMs, a.error];
}

/** Delivered is the truth even when the lease was lost meanwhile. Params: status, at, id. */
export const MARK_DELIVERED_SQL = `UPDATE messages SET state = 'delivered', attempts = attempts + 1,
  round_attempts = round_attempts + 1, next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL,
  last_status = ?, last_error = NULL, delivered_at = ? WHERE id = ? AND state = 'pending'`;

/** Params: next attempt (null when dead), state, status, error, id, owner. */
export const MARK_FAILED_SQL = `UPDATE messages SET state = ?, attempts = attempts + 1,
  round_attempts = round_attempts + 1, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
  last_status = ?, last_error = ? WHERE id = ? AND lease_owner = ? AND state = 'pending'`;

/** 410: the message waits for the consumer to be enabled again. Params: status, error, next, id, owner. */
export const MARK_DISABLING_SQL = `UPDATE messages SET attempts = attempts + 1, lease_owner = NULL, lease_until = NULL,
  last_status = ?, last_error = ?, next_attempt_at = ? WHERE id = ? AND lease_owner = ? AND state = 'pending'`;

/** Params: delivered at, name. */
export const CONSUMER_DELIVERED_SQL = 'UPDATE consumers SET last_delivered_at = ? WHERE name = ?';
/** Params: error, name. */
export const CONSUMER_FAILED_SQL = 'UPDATE consumers SET last_error = ? WHERE name = ?';
/** Params: reason, now, name. */
export const DISABLE_CONSUMER_SQL =
  'UPDATE consumers SET enabled = 0, disabled_reason = ?, updated_at = ? WHERE name = ?';
/** Params: now, name. */
export const ENABLE_CONSUMER_SQL =
  'UPDATE consumers SET enabled = 1, disabled_reason = NULL, updated_at = ? WHERE name = ?';
/** Params: position, name. */
export const MOVE_POSITION_SQL = 'UPDATE consumers SET position = ? WHERE name = ?';
/** `enable --from now`: what was waiting is skipped (kept as dead, retryable). Params: name. */
export const SKIP_PENDING_SQL = `UPDATE messages SET state = 'dead', next_attempt_at = NULL,
  last_error = 'skipped: the destination was enabled from now' WHERE consumer = ? AND state = 'pending' AND lease_until IS NULL`;

export function releaseSql(count: number): string {
  return `UPDATE messages SET lease_owner = NULL, lease_until = NULL
    WHERE lease_owner = ? AND id IN (${placeholders(count)})`;
}

/**
 * Params: consumer, consumer. The earliest moment one of its pending messages may be claimed: the
 * first due message nobody holds, or the first lease to run out. Both walk an index from its start.
 */
export const NEXT_DUE_SQL = `SELECT
  (SELECT MIN(next_attempt_at) FROM messages
    WHERE consumer = ? AND state = 'pending' AND lease_until IS NULL) AS due,
  (SELECT MIN(lease_until) FROM messages WHERE consumer = ? AND lease_until IS NOT NULL) AS lease_end`;

/** Params: consumer, consumer. Both counts walk an index (`messages_state_seq`) alone. */
const COUNT_COLUMNS = `(SELECT COUNT(*) FROM messages WHERE state = 'pending' AND consumer = ?) AS pending,
  (SELECT COUNT(*) FROM messages WHERE state = 'dead' AND consumer = ?) AS dead`;

/** Params: consumer, consumer. */
export const CONSUMER_COUNTS_SQL = `SELECT ${COUNT_COLUMNS}`;

/** Params: consumer, consumer, consumer. The oldest reads every pending row (no index has `recorded_at`). */
export const CONSUMER_STATS_SQL = `SELECT ${COUNT_COLUMNS},
  (SELECT MIN(recorded_at) FROM messages WHERE consumer = ? AND state = 'pending') AS oldest`;

/** Params: now, id. */
export const RETRY_DEAD_SQL = `UPDATE messages SET state = 'pending', round_attempts = 0, next_attempt_at = ?
  WHERE id = ? AND state = 'dead'`;

export function retryAllDeadQuery(consumer: string | undefined, nowMs: number): SqlQuery {
  return consumer === undefined
    ? {
        sql: "UPDATE messages SET state = 'pending', round_attempts = 0, next_attempt_at = ? WHERE state = 'dead'",
        params: [nowMs],
      }
    : {
        sql: "UPDATE messages SET state = 'pending', round_attempts = 0, next_attempt_at = ? WHERE state = 'dead' AND consumer = ?",
        params: [nowMs, consumer],
      };
}

export function listMessagesQuery(query: MessageQuery): SqlQuery {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (query.state !== undefined) {
    where.push('state = ?');
    params.push(query.state);
  }
  if (query.consumer !== undefined) {
    where.push('consumer = ?');
    params.push(query.consumer);
  }
  if (query.objectId !== undefined) {
    where.push('object_id = ?');
    params.push(query.objectId);
  }
  if (query.after !== undefined) {
    where.push('seq < ?');
    params.push(query.after);
  }
  params.push(query.limit + 1);
  const whereSql = where.length > 0 ? `WHERE ${where.join(' AND ')} ` : '';
  return { sql: `SELECT ${MESSAGE_COLUMNS} FROM messages ${whereSql}ORDER BY seq DESC LIMIT ?`, params };
}

export interface ConsumerRow {
  name: string;
  kind: string;
  position: unknown;
  enabled: unknown;
  disabled_reason: string | null;
  secret: string | null;
  config_hash: string;
  config: string;
  created_at: unknown;
  updated_at: unknown;
  last_delivered_at: unknown;
  last_error: string | null;
}

export interface MessageRow {
  seq: unknown;
  id: string;
  consumer: string;
  transition_seq: unknown;
  transition_id: string;
  object_id: string;
  type: string;
  recorded_at: unknown;
  state: string;
  attempts: unknown;
  round_attempts: unknown;
  next_attempt_at: unknown;
  lease_owner: string | null;
  lease_until: unknown;
  last_status: unknown;
  last_error: string | null;
  created_at: unknown;
  delivered_at: unknown;
}

export interface AttemptRow {
  at: unknown;
  status: unknown;
  duration_ms: unknown;
  error: string | null;
}

export interface CountsRow {
  pending: unknown;
  dead: unknown;
}

export interface StatsRow extends CountsRow {
  oldest: unknown;
}

function nullableNumber(value: unknown): number | null {
  return value === null || value === undefined ? null : toNumber(value);
}

export function consumerFromRow(row: ConsumerRow): ConsumerRecord {
  return {
    name: row.name,
    kind: row.kind as ConsumerKind,
    position: toNumber(row.position),
    enabled: toNumber(row.enabled) !== 0,
    disabledReason: row.disabled_reason,
    secret: row.secret,
    configHash: row.config_hash,
    config: JSON.parse(row.config) as Record<string, unknown>,
    createdAtMs: toNumber(row.created_at),
    updatedAtMs: toNumber(row.updated_at),
    lastDeliveredAtMs: nullableNumber(row.last_delivered_at),
    lastError: row.last_error,
  };
}

export function messageFromRow(row: MessageRow): MessageRecord {
  return {
    seq: toNumber(row.seq),
    id: row.id,
    consumer: row.consumer,
    transitionSeq: toNumber(row.transition_seq),
    transitionId: row.transition_id,
    objectId: row.object_id,
    type: row.type,
    recordedAtMs: toNumber(row.recorded_at),
    state: row.state as MessageState,
    attempts: toNumber(row.attempts),
    roundAttempts: toNumber(row.round_attempts),
    nextAttemptAtMs: nullableNumber(row.next_attempt_at),
    leaseOwner: row.lease_owner,
    leaseUntilMs: nullableNumber(row.lease_until),
    lastStatus: nullableNumber(row.last_status),
    lastError: row.last_error,
    createdAtMs: toNumber(row.created_at),
    deliveredAtMs: nullableNumber(row.delivered_at),
  };
}

export function attemptFromRow(row: AttemptRow): AttemptRecord {
  return {
    atMs: toNumber(row.at),
    status: nullableNumber(row.status),
    durationMs: toNumber(row.duration_ms),
    error: row.error,
  };
}

export function countsFromRow(row: CountsRow | undefined): ConsumerCounts {
  return {
    pending: row === undefined ? 0 : toNumber(row.pending),
    dead: row === undefined ? 0 : toNumber(row.dead),
  };
}

export function statsFromRow(row: StatsRow | undefined): ConsumerStats {
  return { ...countsFromRow(row), oldestPendingAtMs: row === undefined ? null : nullableNumber(row.oldest) };
}

/** The statements that record one attempt's outcome, in order. */
export function outcomeStatements(outcome: AttemptOutcome, nowMs: number): SqlQuery[] {
  const statements = attemptStatements(outcome, nowMs);
  if (outcome.verdict.state === 'delivered') {
    statements.push({ sql: CONSUMER_DELIVERED_SQL, params: [outcome.attempt.atMs, outcome.consumer] });
  }
  return statements;
}

/**
 * The statements that record a batch of outcomes in one transaction: each outcome's, except that a
 * consumer's `last_delivered_at` (a column nothing else writes) is set once, to its latest delivery.
 */
export function batchOutcomeStatements(outcomes: readonly AttemptOutcome[], nowMs: number): SqlQuery[] {
  const statements = outcomes.flatMap((outcome) => attemptStatements(outcome, nowMs));
  const delivered = new Map<string, number>();
  for (const { verdict, consumer, attempt } of outcomes) {
    if (verdict.state === 'delivered')
      delivered.set(consumer, Math.max(delivered.get(consumer) ?? 0, attempt.atMs));
  }
  for (const [consumer, atMs] of delivered)
    statements.push({ sql: CONSUMER_DELIVERED_SQL, params: [atMs, consumer] });
  return statements;
}

/**
 * An outcome's statements but the consumer's `last_delivered_at`: the attempt row, what it does to its
 * message, and to its consumer when it failed.
 */
function attemptStatements(outcome: AttemptOutcome, nowMs: number): SqlQuery[] {
  const a = outcome.attempt;
  const statements: SqlQuery[] = [{ sql: INSERT_ATTEMPT_SQL, params: insertAttemptParams(outcome) }];
  const v = outcome.verdict;
  switch (v.state) {
    case 'delivered':
      statements.push({ sql: MARK_DELIVERED_SQL, params: [a.status, a.atMs, outcome.messageId] });
      break;
    case 'retry':
    case 'dead':
      statements.push({
        sql: MARK_FAILED_SQL,
        params: [
          v.state === 'dead' ? 'dead' : 'pending',
          v.state === 'dead' ? null : v.nextAttemptAtMs,
          a.status,
          a.error,
          outcome.messageId,
          outcome.owner,
        ],
      });
      statements.push({ sql: CONSUMER_FAILED_SQL, params: [a.error, outcome.consumer] });
      break;
    case 'disable':
      statements.push({
        sql: MARK_DISABLING_SQL,
        params: [a.status, a.error, nowMs, outcome.messageId, outcome.owner],
      });
      // One statement per row: PostgreSQL runs them as one (see `combinedStatement`).
      statements.push({ sql: DISABLE_WITH_ERROR_SQL, params: [v.reason, nowMs, a.error, outcome.consumer] });
      break;
  }
  return statements;
}

/** Params: reason, now, error, name. */
const DISABLE_WITH_ERROR_SQL =
  'UPDATE consumers SET enabled = 0, disabled_reason = ?, updated_at = ?, last_error = ? WHERE name = ?';

/**
 * Statements that each change different rows, as one PostgreSQL statement (data-modifying CTEs): one
 * round trip instead of several.
 */
export function combinedStatement(statements: readonly SqlQuery[]): SqlQuery {
  const last = statements.at(-1);
  if (last === undefined) throw new Error('no statements');
  const ctes = statements.slice(0, -1).map((s, i) => `s${i} AS (${s.sql})`);
  return {
    sql: ctes.length === 0 ? last.sql : `WITH ${ctes.join(',\n')}\n${last.sql}`,
    params: statements.flatMap((s) => s.params),
  };
}

/**
 * PostgreSQL's claim once the consumer's row is locked: count the leases every instance holds, pick
 * due rows others do not hold, and lease them, in one statement. Params: consumer, now, now, limit,
 * maxInFlight, consumer, now, owner, lease until.
 */
export function claimAndLeaseSql(ordered: boolean): string {
  return `WITH picked AS (
  SELECT m.seq FROM messages m WHERE ${dueMessagesWhere(ordered)}
  ORDER BY m.next_attempt_at
  LIMIT GREATEST(0, LEAST(?::bigint, ?::bigint - (SELECT COUNT(*) FROM messages
    WHERE consumer = ? AND lease_until > ? AND state = 'pending')))
  FOR UPDATE OF m SKIP LOCKED
)
UPDATE messages SET lease_owner = ?, lease_until = ? FROM picked WHERE messages.seq = picked.seq
RETURNING messages.*`;
}

export function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** The smaller of two nullable database numbers; undefined when both are null. */
export function earliest(a: unknown, b: unknown): number | undefined {
  const values = [a, b].filter((v) => v !== null && v !== undefined).map(toNumber);
  return values.length === 0 ? undefined : Math.min(...values);
}
