import type { PoolClient, QueryResultRow } from 'pg';
import { HOLDING_CLOCK, type Clock } from '../../clock.js';
import { foldBatch, type ObjectState } from '../object-state.js';
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

/**
 * Inserts each distinct event, or counts it as a duplicate when its key is stored already (by an earlier
 * batch or by another instance right now: the unique index makes us wait for that commit). Rows are
 * written in key order so two instances committing overlapping batches cannot deadlock; `seq` is drawn
 * in arrival order first, so events stay listed in the order received. `inserted` is false for keys
 * that were already there.
 */
function upsertEventsQuery(
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
  // `incoming` is read twice, so PostgreSQL computes it (and each nextval) exactly once.
  const sql = `WITH incoming AS (
  SELECT nextval(${sequence}::regclass) AS seq, v.* FROM (VALUES ${rows.join(',\n  ')}) AS v (${EVENT_COLUMN_LIST})
), stored AS (
  INSERT INTO events (seq, ${EVENT_COLUMN_LIST}, conflict)
  SELECT seq, ${EVENT_COLUMN_LIST}, 0 FROM incoming ORDER BY delivery_key
  ON CONFLICT (delivery_key) DO UPDATE SET duplicates = events.duplicates + excluded.duplicates + 1
  RETURNING seq, delivery_key
)
SELECT stored.delivery_key, stored.seq = incoming.seq AS inserted FROM stored JOIN incoming USING (delivery_key)`;
  return { sql, params };
}

const STATE_COLUMN_LIST = OBJECT_STATE_COLUMNS.join(', ');

/** Locks in id order, as every instance does: commits over the same objects queue rather than deadlock. */
const LOCK_OBJECTS_SQL = `SELECT ${STATE_COLUMN_LIST} FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/**
 * A row for each object seen for the first time, locked by this transaction until the fold below
 * overwrites it. `ON CONFLICT DO NOTHING` waits for another instance creating the same object.
 */
const INSERT_OBJECT_PLACEHOLDERS_SQL = `INSERT INTO objects (${STATE_COLUMN_LIST}, summary)
  SELECT id, 'prediction', '', -1, NULL, 0, 0, 'other', 0, '', 0, 0, 0, 0, NULL, '{}'
  FROM unnest($1::text[]) AS t(id) ORDER BY id
  ON CONFLICT (id) DO NOTHING
  RETURNING id`;

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

const UPDATE_OBJECTS_SQL = `UPDATE objects AS o SET
  ${OBJECT_UPDATE_COLUMNS.slice(1)
    .map(([name]) =>
      name === 'summary' ? 'summary = COALESCE(v.summary, o.summary)' : `${name} = v.${name}`,
    )
    .join(', ')}
  FROM unnest(${OBJECT_UPDATE_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})
    AS v (${OBJECT_UPDATE_COLUMNS.map(([name]) => name).join(', ')})
  WHERE o.id = v.id`;

/** The same, also flagging the conflicting events (rows this transaction inserted). */
const UPDATE_OBJECTS_AND_FLAG_CONFLICTS_SQL = `WITH flagged AS (
  UPDATE events SET conflict = 1 WHERE delivery_key = ANY($${OBJECT_UPDATE_COLUMNS.length + 1}::text[])
)
${UPDATE_OBJECTS_SQL}`;

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

/** Held until the transaction ends; the schema is part of the key, so schemas do not wait on each other. */
const TRANSITIONS_LOCK_SQL = `SELECT pg_advisory_xact_lock(hashtextextended('inlet.transitions.' || current_schema(), 0))`;

/** The batch's transitions in one statement, then a wake-up for every instance's runner (sent at COMMIT). */
const INSERT_TRANSITIONS_SQL = `WITH inserted AS (
  INSERT INTO transitions (${TRANSITION_COLUMNS.join(', ')})
  SELECT * FROM unnest(${TRANSITION_COLUMNS.map((c, i) => `$${i + 1}::${TRANSITION_TYPES[c]}[]`).join(', ')})
  RETURNING seq
)
SELECT pg_notify('${TRANSITIONS_CHANNEL}', MAX(seq)::text) FROM inserted`;

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

    const upsert = upsertEventsQuery(distinct, occurrences, this.#sequence);
    const stored = await client.query<{ delivery_key: string; inserted: boolean }>(upsert.sql, upsert.params);
    const inserted = new Set(stored.rows.filter((r) => r.inserted).map((r) => r.delivery_key));
    const isNew = (event: IncomingEvent, i: number) =>
      inserted.has(event.key) && firstIndex.get(event.key) === i;

    const objectIds = [...new Set(events.filter(isNew).map((e) => e.object.id))];
    const states = await lockObjects(client, objectIds);

    const { outcomes, summaries, conflicts, transitions } = foldBatch(events, isNew, states);

    if (objectIds.length > 0) {
      const params: unknown[] = updateObjectsParams(
        objectIds.map((id) => states.get(id)).filter((s): s is ObjectState => s !== undefined),
        summaries,
      );
      if (conflicts.length > 0) {
        await client.query(UPDATE_OBJECTS_AND_FLAG_CONFLICTS_SQL, [...params, conflicts]);
      } else {
        await client.query(UPDATE_OBJECTS_SQL, params);
      }
    }
    if (transitions.length > 0) {
      // Serialised across instances until COMMIT, so `seq` follows commit order: a reader that has seen
      // seq N never later finds a committed row below N (CONTRACT §8's consumers read "after seq").
      await client.query(TRANSITIONS_LOCK_SQL);
      const columns: SqlValue[][] = TRANSITION_COLUMNS.map(() => []);
      const recordedAtMs = Date.now();
      for (const transition of transitions) {
        newTransitionValues(transition, recordedAtMs).forEach((value, i) => columns[i]?.push(value));
      }
      await client.query(INSERT_TRANSITIONS_SQL, columns);
    }
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
 * Locks the objects' rows, creating placeholders for new ones, and returns the existing states (new
 * objects have none). Existing rows come first: that is the common case and costs one round trip.
 */
async function lockObjects(client: PoolClient, ids: readonly string[]): Promise<Map<string, ObjectState>> {
  const states = new Map<string, ObjectState>();
  if (ids.length === 0) return states;
  const lockExisting = async (wanted: readonly string[]) => {
    const { rows } = await client.query<ObjectStateRow & QueryResultRow>(LOCK_OBJECTS_SQL, [wanted]);
    for (const row of rows) states.set(row.id, objectStateFromRow(row));
  };
  await lockExisting(ids);
  const missing = ids.filter((id) => !states.has(id));
  if (missing.length === 0) return states;
  const created = new Set(
    (await client.query<{ id: string }>(INSERT_OBJECT_PLACEHOLDERS_SQL, [missing])).rows.map((r) => r.id),
  );
  // Created by another instance between our two statements: lock the row it committed.
  const raced = missing.filter((id) => !created.has(id));
  if (raced.length > 0) await lockExisting(raced);
  const lost = raced.filter((id) => !states.has(id));
  if (lost.length > 0) throw new Error(`Objects ${lost.join(', ')} could neither be locked nor created`);
  return states;
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
