import type { PoolClient, QueryResultRow } from 'pg';
import { HOLDING_CLOCK, type Clock } from '../../clock.js';
import { foldBatch, type NewTransition, type ObjectState } from '../object-state.js';
import {
  insertEventParams,
  insertRejectionParams,
  insertRejectionsSql,
  newTransitionValues,
  numberPlaceholders,
  OBJECT_STATE_COLUMNS,
  objectStateFromRow,
  objectStateValues,
  REJECTION_TOTALS_SQL,
  toNumber,
  TRANSITION_COLUMNS,
  TRIM_REJECTIONS_BY_BYTES_SQL,
  TRIM_REJECTIONS_BY_ROWS_SQL,
  type ObjectStateColumn,
  type ObjectStateRow,
  type RejectionTotalsRow,
  type SqlQuery,
  type SqlValue,
} from '../statements.js';
import { randomId } from '../random-id.js';
import type { CommitOutcome, IncomingEvent, NewRejection, RejectionLimits } from '../types.js';
import { isPostgresUnavailable, isRetryableConflict, toStoreError } from './postgres-errors.js';
import { TRANSITIONS_CHANNEL } from './postgres-jobs.js';

/** Tries of one transaction when PostgreSQL reports a deadlock or serialization failure. */
const COMMIT_ATTEMPTS = 4;
const ROLLBACK_WAIT_MS = 1000;

// ---- PostgreSQL-only commit statements (row locks, upserts, arrays) ----

const EVENT_COLUMNS = [
  ['delivery_key', 'text'],
  ['object_id', 'text'],
  ['status', 'text'],
  ['scheme', 'text'],
  ['received_at', 'bigint'],
  ['webhook_ts', 'bigint'],
  ['headers', 'text'],
  ['body', 'bytea'],
  ['duplicates', 'integer'],
] as const;
const EVENT_COLUMN_LIST = EVENT_COLUMNS.map(([name]) => name).join(', ');

const STATE_COLUMN_LIST = OBJECT_STATE_COLUMNS.join(', ');

/** Locks in id order, as every instance does: commits over the same objects queue rather than deadlock. */
const LOCK_OBJECTS_SQL = `SELECT ${STATE_COLUMN_LIST} FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/** The columns after `id` of an object seen for the first time, until the batch's fold overwrites them. */
const PLACEHOLDER_STATE = `'prediction', '', -1, NULL, 0, 0, 'other', 0, '', 0, 0, 0, 0, NULL, '{}'`;

/**
 * The batch's first statement (one round trip): inserts each distinct event, or counts it as a
 * duplicate when its key is stored already (by an earlier batch or by another instance right now: the
 * unique index makes us wait for that commit); then locks the objects of the events it inserted, in id
 * order, and creates (locked by this transaction) the rows of objects seen for the first time. Events
 * are written in key order so two instances committing overlapping batches cannot deadlock; `seq` is
 * drawn in arrival order first, so events stay listed in the order received.
 *
 * One row comes back: `events`, each distinct key with whether it was inserted; `states`, the locked
 * objects' rows; `created`, the ids of the placeholder rows made. An object another instance created
 * after this statement's snapshot is in neither (its insert waited, then did nothing): the caller locks
 * those with one more statement.
 */
function beginBatchQuery(
  events: readonly IncomingEvent[],
  occurrences: ReadonlyMap<string, number>,
  sequence: string,
): SqlQuery {
  const params: SqlValue[] = [];
  const rows = events.map((event) => {
    const values = [...insertEventParams(event), (occurrences.get(event.key) ?? 1) - 1];
    const cells = values.map((value, i) => {
      params.push(value);
      return `$${params.length}::${EVENT_COLUMNS[i]?.[1] ?? 'text'}`;
    });
    return `(${cells.join(', ')})`;
  });
  // `incoming` is read more than once, so PostgreSQL computes it (and each nextval) exactly once.
  const sql = `WITH incoming AS (
  SELECT nextval(${sequence}::regclass) AS seq, v.* FROM (VALUES ${rows.join(',\n  ')}) AS v (${EVENT_COLUMN_LIST})
), stored AS (
  INSERT INTO events (seq, ${EVENT_COLUMN_LIST}, conflict)
  SELECT seq, ${EVENT_COLUMN_LIST}, 0 FROM incoming ORDER BY delivery_key
  ON CONFLICT (delivery_key) DO UPDATE SET duplicates = events.duplicates + excluded.duplicates + 1
  RETURNING seq, delivery_key
), fresh AS (
  SELECT DISTINCT incoming.object_id AS id FROM stored JOIN incoming USING (delivery_key)
  WHERE stored.seq = incoming.seq
), locked AS (
  SELECT ${STATE_COLUMN_LIST} FROM objects WHERE id IN (SELECT id FROM fresh) ORDER BY id FOR UPDATE
), created AS (
  INSERT INTO objects (${STATE_COLUMN_LIST}, summary)
  SELECT id, ${PLACEHOLDER_STATE} FROM fresh WHERE id NOT IN (SELECT id FROM locked) ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id
)
SELECT
  (SELECT COALESCE(json_agg(json_build_array(stored.delivery_key, stored.seq = incoming.seq)), '[]')
    FROM stored JOIN incoming USING (delivery_key)) AS events,
  (SELECT COALESCE(json_agg(locked), '[]') FROM locked) AS states,
  (SELECT COALESCE(json_agg(created.id), '[]') FROM created) AS created`;
  return { sql, params };
}

interface BeginBatchRow {
  events: [key: string, inserted: boolean][];
  states: ObjectStateRow[];
  created: string[];
}

const POSTGRES_STATE_TYPES: Record<ObjectStateColumn, string> = {
  id: 'text',
  kind: 'text',
  status: 'text',
  status_rank: 'integer',
  model: 'text',
  observed_at: 'bigint',
  logs_len: 'bigint',
  output_kind: 'text',
  output_len: 'bigint',
  winning_event_key: 'text',
  event_count: 'bigint',
  conflict_count: 'bigint',
  first_received_at: 'bigint',
  last_received_at: 'bigint',
  output_digest: 'text',
};

/** `objectStateValues()` order, then the summary (null when the folded body did not change). */
const OBJECT_UPDATE_COLUMNS: readonly (readonly [string, string])[] = [
  ...OBJECT_STATE_COLUMNS.map((name) => [name, POSTGRES_STATE_TYPES[name]] as const),
  ['summary', 'text'],
];

/** The folded states' columns as arrays (`objectStateValues()` order, then the summary). */
function updateObjectsParams(
  states: Iterable<ObjectState>,
  summaries: ReadonlyMap<string, string>,
): SqlValue[][] {
  const columns: SqlValue[][] = OBJECT_UPDATE_COLUMNS.map(() => []);
  for (const state of states) {
    const row: SqlValue[] = [...objectStateValues(state), summaries.get(state.id) ?? null];
    row.forEach((value, i) => columns[i]?.push(value));
  }
  return columns;
}

const TRANSITION_TYPES: Record<(typeof TRANSITION_COLUMNS)[number], string> = {
  id: 'text',
  type: 'text',
  object_id: 'text',
  kind: 'text',
  model: 'text',
  status: 'text',
  event_key: 'text',
  recorded_at: 'bigint',
  event_count: 'bigint',
  first_received_at: 'bigint',
  last_received_at: 'bigint',
};

/** What the batch's second statement writes, once its objects are folded. */
interface BatchWrites {
  states: readonly ObjectState[];
  summaries: ReadonlyMap<string, string>;
  /** Keys of the events (inserted by this transaction) that conflict with their object's state. */
  conflicts: readonly string[];
  transitions: readonly NewTransition[];
  recordedAtMs: number;
}

/**
 * The batch's second statement (one round trip): the folded states, the conflict flags, and the
 * transitions with a wake-up for every instance's runner (`pg_notify`, sent at COMMIT). Transitions are
 * inserted only once this transaction holds the schema's transitions lock (the insert reads the
 * lock's row, so the lock comes first), held until COMMIT: `seq` follows commit order across
 * instances, and a reader that has seen seq N never later finds a committed row below N (consumers
 * read "after seq"). The lock is taken only by batches that have transitions.
 */
function writeBatchQuery(writes: BatchWrites): { sql: string; params: unknown[] } {
  // Each parameter is a whole column: `unnest` turns the arrays back into rows.
  const params: unknown[] = [];
  const arrays = (types: readonly string[], columns: readonly SqlValue[][]) =>
    types
      .map((type, i) => {
        params.push(columns[i] ?? []);
        return `$${params.length}::${type}[]`;
      })
      .join(', ');
  const updateObjects = `UPDATE objects AS o SET
  ${OBJECT_UPDATE_COLUMNS.slice(1)
    .map(([name]) => (name === 'summary' ? 'summary = COALESCE(v.summary, o.summary)' : `${name} = v.${name}`))
    .join(', ')}
  FROM unnest(${arrays(
    OBJECT_UPDATE_COLUMNS.map(([, type]) => type),
    updateObjectsParams(writes.states, writes.summaries),
  )}) AS v (${OBJECT_UPDATE_COLUMNS.map(([name]) => name).join(', ')})
  WHERE o.id = v.id`;
  const before: string[] = [];
  if (writes.conflicts.length > 0) {
    params.push([...writes.conflicts]);
    before.push(`flagged AS (UPDATE events SET conflict = 1 WHERE delivery_key = ANY($${params.length}::text[]))`);
  }
  if (writes.transitions.length === 0) {
    return { sql: before.length > 0 ? `WITH ${before.join(',\n')}\n${updateObjects}` : updateObjects, params };
  }
  const columns: SqlValue[][] = TRANSITION_COLUMNS.map(() => []);
  for (const transition of writes.transitions) {
    newTransitionValues(transition, writes.recordedAtMs).forEach((value, i) => columns[i]?.push(value));
  }
  const sql = `WITH ${[
    ...before,
    `updated AS (${updateObjects})`,
    `serialised AS (SELECT pg_advisory_xact_lock(hashtextextended('inlet.transitions.' || current_schema(), 0)))`,
    `inserted AS (
  INSERT INTO transitions (${TRANSITION_COLUMNS.join(', ')})
  SELECT t.* FROM unnest(${arrays(
    TRANSITION_COLUMNS.map((c) => TRANSITION_TYPES[c]),
    columns,
  )}) AS t (${TRANSITION_COLUMNS.join(', ')}), serialised
  RETURNING seq
)`,
  ].join(',\n')}
SELECT pg_notify('${TRANSITIONS_CHANNEL}', MAX(seq)::text) FROM inserted`;
  return { sql, params };
}

/**
 * Everything `serve` writes to PostgreSQL, each call on a connection inside the caller's transaction
 * (`transaction` below): row locks in key and id order, so instances committing at once queue rather
 * than deadlock.
 */
export class PostgresWriter {
  /** The qualified name of `events.seq`'s sequence, as a SQL literal. */
  readonly #sequence: string;

  constructor(eventSequence: string) {
    this.#sequence = eventSequence;
  }

  /**
   * Inserts the events (dedupe on key), locks and folds their objects, writes the new states and the
   * transitions; on `client`, inside the caller's transaction.
   */
  async commitEvents(client: PoolClient, events: readonly IncomingEvent[]): Promise<CommitOutcome[]> {
    const firstIndex = new Map<string, number>();
    const occurrences = new Map<string, number>();
    const distinct: IncomingEvent[] = [];
    events.forEach((event, i) => {
      if (!firstIndex.has(event.key)) {
        firstIndex.set(event.key, i);
        distinct.push(event);
      }
      occurrences.set(event.key, (occurrences.get(event.key) ?? 0) + 1);
    });

    const begin = beginBatchQuery(distinct, occurrences, this.#sequence);
    const first = (await client.query<BeginBatchRow & QueryResultRow>(begin.sql, begin.params)).rows[0];
    if (first === undefined) throw new Error('The batch statement returned no row');
    const inserted = new Set(first.events.filter(([, isInserted]) => isInserted).map(([key]) => key));
    const isNew = (event: IncomingEvent, i: number) =>
      inserted.has(event.key) && firstIndex.get(event.key) === i;

    const objectIds = [...new Set(events.filter(isNew).map((e) => e.object.id))];
    if (objectIds.length === 0) return events.map(() => ({ duplicate: true, applied: false, conflict: false }));
    const states = new Map(first.states.map((row) => [row.id, objectStateFromRow(row)]));
    const created = new Set(first.created);
    // Created by another instance after the statement's snapshot: lock the row it committed.
    const raced = objectIds.filter((id) => !states.has(id) && !created.has(id));
    if (raced.length > 0) {
      const { rows } = await client.query<ObjectStateRow & QueryResultRow>(LOCK_OBJECTS_SQL, [raced]);
      for (const row of rows) states.set(row.id, objectStateFromRow(row));
      const lost = raced.filter((id) => !states.has(id));
      if (lost.length > 0) throw new Error(`Objects ${lost.join(', ')} could neither be locked nor created`);
    }

    const { outcomes, summaries, conflicts, transitions } = foldBatch(events, isNew, states);
    const write = writeBatchQuery({
      states: objectIds.map((id) => states.get(id)).filter((s): s is ObjectState => s !== undefined),
      summaries,
      conflicts,
      transitions,
      recordedAtMs: Date.now(),
    });
    await client.query(write.sql, write.params);
    return outcomes;
  }

  /** Appends the rejections in one statement, then trims the log to its limits. */
  async recordRejections(
    client: PoolClient,
    rows: readonly NewRejection[],
    limits: RejectionLimits,
  ): Promise<void> {
    const params = rows.flatMap((row) => insertRejectionParams(randomId('rej_'), row));
    await client.query(numberPlaceholders(insertRejectionsSql(rows.length)), params);
    const totals = (await client.query<RejectionTotalsRow & QueryResultRow>(REJECTION_TOTALS_SQL)).rows[0];
    if (totals === undefined) return;
    if (toNumber(totals.row_count) > limits.maxRows) {
      await client.query(numberPlaceholders(TRIM_REJECTIONS_BY_ROWS_SQL), [limits.maxRows]);
    }
    if (toNumber(totals.body_bytes) > limits.maxBodyBytes) {
      await client.query(numberPlaceholders(TRIM_REJECTIONS_BY_BYTES_SQL), [limits.maxBodyBytes]);
    }
  }
}

/**
 * Runs `work` in one transaction on a pooled connection; a deadlock or serialization failure runs the
 * whole transaction again (up to COMMIT_ATTEMPTS, after a pause timed by `clock`), and errors come out as
 * store errors.
 */
export async function transaction<T>(
  connect: (doing: string) => Promise<PoolClient>,
  location: string,
  doing: string,
  work: (client: PoolClient) => Promise<T>,
  clock: Clock = HOLDING_CLOCK,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await connect(doing);
    let broken: Error | undefined;
    // A connection lost between two statements emits here, not on a query.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      if (broken === undefined && isPostgresUnavailable(error)) broken = error as Error;
      if (broken === undefined) broken = await rollback(client);
      if (isRetryableConflict(error) && attempt < COMMIT_ATTEMPTS) {
        // Another instance won a lock race: run the whole transaction again after a short, jittered pause.
        await new Promise<void>((resolve) => clock.setTimeout(resolve, 5 * attempt + Math.random() * 20));
        continue;
      }
      throw toStoreError(error, doing, location);
    } finally {
      client.removeListener('error', onError);
      // A broken connection is closed, never handed out again.
      client.release(broken ?? false);
    }
  }
}

/** Ends a failed transaction; answers the error when the connection is no longer usable. */
export async function rollback(client: PoolClient): Promise<Error | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.query('ROLLBACK'),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('ROLLBACK did not answer')), ROLLBACK_WAIT_MS);
      }),
    ]);
    return undefined;
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  } finally {
    clearTimeout(timer);
  }
}
