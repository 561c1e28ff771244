import type { Writable } from 'node:stream';
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
  type SqlValue,
} from '../statements.js';
import { orderedId } from '../random-id.js';
import type { CommitOutcome, IncomingEvent, NewRejection, RejectionLimits } from '../types.js';
import {
  isPostgresUnavailable,
  isRetryableConflict,
  isStaleGuess,
  STALE_GUESS,
  toStoreError,
} from './postgres-errors.js';
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
  ['conflict', 'integer'],
] as const;
const EVENT_COLUMN_LIST = EVENT_COLUMNS.map(([name]) => name).join(', ');

const STATE_COLUMN_LIST = OBJECT_STATE_COLUMNS.join(', ');

/**
 * The batch's first read: locks its objects' rows in id order, as every instance does (commits over the
 * same objects queue rather than deadlock), and reads their states. Objects seen for the first time
 * have no row yet: the batch inserts them, and an instance that inserts the same one first makes that
 * insert fail and the batch run again (`isRetryableConflict`).
 */
const LOCK_OBJECTS_SQL = `SELECT ${STATE_COLUMN_LIST} FROM objects WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`;

/**
 * The batch's second read, run once its objects are locked (so with a snapshot taken after any commit
 * it waited for): which of its delivery keys are stored already. A delivery of one object is committed
 * by a batch holding that object's lock, so a duplicate committed meanwhile by another instance shows.
 */
const STORED_KEYS_SQL = 'SELECT delivery_key FROM events WHERE delivery_key = ANY($1::text[])';

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

/** What the batch's write statement writes, once its objects are folded. */
interface BatchWrites {
  /** The batch's distinct new events, in arrival order. */
  events: readonly IncomingEvent[];
  /** Repeats of each new event within the batch (counted as its duplicates). */
  repeats: ReadonlyMap<string, number>;
  /** Keys of new events whose object's state they conflict with. */
  conflicts: ReadonlySet<string>;
  /** Keys stored already, with how many times the batch delivered each again. */
  duplicates: ReadonlyMap<string, number>;
  /** Folded states of objects seen for the first time (inserted) and of the others (updated). */
  created: readonly ObjectState[];
  updated: readonly ObjectState[];
  summaries: ReadonlyMap<string, string>;
  transitions: readonly NewTransition[];
  recordedAtMs: number;
  /**
   * Set when the states were guessed rather than read under lock (`PostgresWriter`'s fast path): each
   * updated object's `event_count` as guessed before the batch. Every write then checks what it
   * assumed, and the statement fails with `STALE_GUESS` (rolling the transaction back) unless each new
   * event, new object and guessed object was written as guessed.
   */
  guessedCounts?: ReadonlyMap<string, number>;
}

/**
 * The batch's one write statement: the new events (in key order, so instances committing overlapping
 * batches cannot deadlock; `seq` drawn in arrival order first, so events stay listed in the order
 * received), the duplicates counted, the folded states (new objects inserted, the others updated),
 * then the transitions with a wake-up for every instance's runner (`pg_notify`, sent at COMMIT).
 *
 * An event key or a new object another instance committed first fails its insert: the whole
 * transaction runs again and finds it (`isRetryableConflict`); with guessed states, it fails the
 * statement's check instead (`guessedCounts`). Transitions are inserted only once the other writes are
 * done and this transaction holds the schema's transitions lock (the lock's query filters on their
 * counts, so the planner cannot drop them, and the insert reads the lock's row), held until COMMIT:
 * `seq` follows commit order across instances, and a reader that has seen seq N never later finds a
 * committed row below N (consumers read "after seq"). The lock is taken only by batches that have
 * transitions.
 */
function writeBatchQuery(writes: BatchWrites, sequence: string): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const param = (value: unknown, type: string) => {
    params.push(value);
    return `$${params.length}::${type}`;
  };
  // Each array parameter is a whole column: `unnest` turns the arrays back into rows.
  const arrays = (types: readonly string[], columns: readonly SqlValue[][]) =>
    types.map((type, i) => param(columns[i] ?? [], `${type}[]`)).join(', ');
  const stateArrays = (states: readonly ObjectState[]) =>
    arrays(
      OBJECT_UPDATE_COLUMNS.map(([, type]) => type),
      updateObjectsParams(states, writes.summaries),
    );
  const stateColumns = OBJECT_UPDATE_COLUMNS.map(([name]) => name).join(', ');
  const ctes: string[] = [];
  const written: string[] = [];
  const guessed = writes.guessedCounts;
  // A guess inserts what may exist already without failing on it: the check below counts what was written.
  const unlessStored = (key: string) => (guessed === undefined ? '' : `\n  ON CONFLICT (${key}) DO NOTHING`);

  if (writes.events.length > 0) {
    const rows = writes.events.map((event) => {
      const values = [
        ...insertEventParams(event),
        writes.repeats.get(event.key) ?? 0,
        writes.conflicts.has(event.key) ? 1 : 0,
      ];
      return `(${values.map((value, i) => param(value, EVENT_COLUMNS[i]?.[1] ?? 'text')).join(', ')})`;
    });
    // A guess takes its objects' row locks first, in id order, as the locked path's first read does: a
    // statement that inserted events first and locked objects after could deadlock with a locked-path
    // commit holding those objects and inserting the same events (`incoming` waits on the locks).
    let afterLocks = '';
    if (guessed !== undefined) {
      const ids = [...writes.created, ...writes.updated].map((state) => state.id).sort();
      ctes.push(`locked AS (
  SELECT id FROM objects WHERE id = ANY(${param(ids, 'text[]')}) ORDER BY id FOR UPDATE
)`);
      afterLocks = ' WHERE (SELECT count(*) FROM locked) >= 0';
    }
    // `incoming` is read once, and its nextval drawn in the VALUES' (arrival) order before sorting.
    ctes.push(`incoming AS (
  SELECT nextval(${sequence}::regclass) AS seq, v.* FROM (VALUES ${rows.join(',\n  ')}) AS v (${EVENT_COLUMN_LIST})${afterLocks}
)`);
    ctes.push(`stored AS (
  INSERT INTO events (seq, ${EVENT_COLUMN_LIST})
  SELECT seq, ${EVENT_COLUMN_LIST} FROM incoming ORDER BY delivery_key${unlessStored('delivery_key')}
  RETURNING 1
)`);
    written.push('stored');
  }
  if (writes.duplicates.size > 0) {
    ctes.push(`counted AS (
  UPDATE events SET duplicates = events.duplicates + d.n
  FROM unnest(${param([...writes.duplicates.keys()], 'text[]')}, ${param([...writes.duplicates.values()], 'integer[]')}) AS d (key, n)
  WHERE events.delivery_key = d.key
  RETURNING 1
)`);
    written.push('counted');
  }
  if (writes.created.length > 0) {
    ctes.push(`created AS (
  INSERT INTO objects (${stateColumns})
  SELECT ${OBJECT_UPDATE_COLUMNS.map(([name]) => (name === 'summary' ? "COALESCE(v.summary, '{}')" : `v.${name}`)).join(', ')}
  FROM unnest(${stateArrays(writes.created)}) AS v (${stateColumns}) ORDER BY v.id${unlessStored('id')}
  RETURNING 1
)`);
    written.push('created');
  }
  if (writes.updated.length > 0) {
    // A guessed state is written only over the state it was folded from (`event_count` grows with every
    // new event of the object, and only this statement writes objects).
    const guard =
      guessed === undefined
        ? ''
        : ` AND o.event_count = (${param(
            writes.updated.map((state) => guessed.get(state.id) ?? -1),
            'bigint[]',
          )})[v.ord]`;
    ctes.push(`updated AS (
  UPDATE objects AS o SET
  ${OBJECT_UPDATE_COLUMNS.slice(1)
    .map(([name]) =>
      name === 'summary' ? 'summary = COALESCE(v.summary, o.summary)' : `${name} = v.${name}`,
    )
    .join(', ')}
  FROM unnest(${stateArrays(writes.updated)}) WITH ORDINALITY AS v (${stateColumns}, ord)
  WHERE o.id = v.id${guard}
  RETURNING 1
)`);
    written.push('updated');
  }
  let counts = written.map((name) => `(SELECT count(*) FROM ${name})`).join(' + ') || '0';
  if (guessed !== undefined) {
    // Not a constant (the planner would fold it and always fail): cast only when the check fails.
    const expected =
      writes.events.length + writes.created.length + writes.updated.length + writes.duplicates.size;
    counts = `(SELECT CASE WHEN w.n = ${expected} THEN w.n ELSE ('${STALE_GUESS}: ' || w.n)::bigint END
  FROM (SELECT ${counts} AS n) AS w)`;
  }
  if (writes.transitions.length === 0) {
    // Every batch has a new event or a duplicate to count; an empty one still makes valid SQL.
    const withClause = ctes.length > 0 ? `WITH ${ctes.join(',\n')}\n` : '';
    return { sql: `${withClause}SELECT ${counts} AS written`, params };
  }

  const columns: SqlValue[][] = TRANSITION_COLUMNS.map(() => []);
  for (const transition of writes.transitions) {
    newTransitionValues(transition, writes.recordedAtMs).forEach((value, i) => columns[i]?.push(value));
  }
  ctes.push(`serialised AS (
  SELECT pg_advisory_xact_lock(hashtextextended('inlet.transitions.' || current_schema(), 0))
  FROM (SELECT ${counts} AS written) AS done WHERE done.written IS NOT NULL
)`);
  ctes.push(`inserted AS (
  INSERT INTO transitions (${TRANSITION_COLUMNS.join(', ')})
  SELECT t.* FROM unnest(${arrays(
    TRANSITION_COLUMNS.map((c) => TRANSITION_TYPES[c]),
    columns,
  )}) AS t (${TRANSITION_COLUMNS.join(', ')}), serialised
  RETURNING seq
)`);
  return {
    sql: `WITH ${ctes.join(',\n')}\nSELECT pg_notify('${TRANSITIONS_CHANNEL}', MAX(seq)::text) FROM inserted`,
    params,
  };
}

/**
 * Issues `send`'s statements (pipelined, on a client in pipeline mode) in one write to the socket
 * instead of one each: over loopback every write runs PostgreSQL's side of TCP in this process and
 * wakes the server, the largest single cost of a group commit in a CPU profile. Uses the socket under
 * `pg`'s client when it is there to hold (`cork`), and sends them one by one otherwise.
 */
function inOneWrite<T>(client: PoolClient, send: () => T): T {
  const socket = (client as { connection?: { stream?: Partial<Writable> } }).connection?.stream;
  if (typeof socket?.cork !== 'function' || typeof socket.uncork !== 'function') return send();
  socket.cork();
  try {
    return send();
  } finally {
    socket.uncork();
  }
}

/** How the batch's transaction ends: committed, or left open for the caller (a probe rolls it back). */
export type CommitEnd = 'commit' | 'leave-open';

/** Folded states kept for the fast path's guesses: the objects most recently written by this instance. */
const KNOWN_STATES = 4096;
/** After a failed guess, batches that take the locked path before guessing again (doubling to this). */
const MAX_GUESS_PAUSE = 64;

/** What a batch's events say before anything is read: first occurrences, repeats and objects. */
interface BatchKeys {
  firstIndex: Map<string, number>;
  occurrences: Map<string, number>;
  objectIds: string[];
}

function batchKeys(events: readonly IncomingEvent[]): BatchKeys {
  const firstIndex = new Map<string, number>();
  const occurrences = new Map<string, number>();
  events.forEach((event, i) => {
    if (!firstIndex.has(event.key)) firstIndex.set(event.key, i);
    occurrences.set(event.key, (occurrences.get(event.key) ?? 0) + 1);
  });
  return { firstIndex, occurrences, objectIds: [...new Set(events.map((e) => e.object.id))] };
}

/**
 * Everything `serve` writes to PostgreSQL, each call on a connection inside the caller's transaction
 * (`transaction` below): row locks in id order, so instances committing at once queue rather than
 * deadlock (a deadlock that still happens is broken by PostgreSQL and the batch runs again).
 */
export class PostgresWriter {
  /** The qualified name of `events.seq`'s sequence, as a SQL literal. */
  readonly #sequence: string;
  /** Each recently written object's folded state, as committed or as being committed (least recent first). */
  readonly #known = new Map<string, ObjectState>();
  /** Batches left to take the locked path before the next guess, and the pause after the next miss. */
  #pauseLeft = 0;
  #nextPause = 1;
  /** Batches committed by each path (readiness probes, rolled back, not counted), and guesses that missed. */
  readonly paths = { guessed: 0, locked: 0, staleGuesses: 0 };

  constructor(eventSequence: string) {
    this.#sequence = eventSequence;
  }

  /**
   * Commits a batch. Most batches take one round trip: their objects' states are guessed (the state
   * this instance last wrote, or none for an object it has not seen), folded, and sent with BEGIN and
   * COMMIT in one write whose statement checks every guess as it writes (`BatchWrites.guessedCounts`).
   * A wrong guess — another instance wrote the object, a delivery was stored already, a commit this
   * guess was folded on failed — rolls that transaction back, and the batch is committed again the
   * locked way (`#commitLocked`). After a miss, the next batches take the locked path (1, 2, 4 … 64
   * of them) before guessing again, so instances that share objects do not pay for guesses that miss.
   */
  async commitEvents(
    client: PoolClient,
    events: readonly IncomingEvent[],
    end: CommitEnd = 'commit',
  ): Promise<CommitOutcome[]> {
    const keys = batchKeys(events);
    // A readiness probe (rolled back) never guesses, and does not count down a pause either.
    if (end === 'commit') {
      if (this.#pauseLeft > 0) {
        this.#pauseLeft--;
      } else {
        const outcomes = await this.#commitGuessed(client, events, keys);
        if (outcomes !== undefined) {
          this.#nextPause = 1;
          return outcomes;
        }
        this.#pauseLeft = this.#nextPause;
        this.#nextPause = Math.min(this.#nextPause * 2, MAX_GUESS_PAUSE);
      }
    }
    return this.#commitLocked(client, events, keys, end);
  }

  /** The fast path: one round trip, or undefined when a guess was wrong (nothing was written). */
  async #commitGuessed(
    client: PoolClient,
    events: readonly IncomingEvent[],
    keys: BatchKeys,
  ): Promise<CommitOutcome[] | undefined> {
    const states = new Map<string, ObjectState>();
    for (const id of keys.objectIds) {
      const known = this.#known.get(id);
      if (known !== undefined) states.set(id, known);
    }
    const guessedCounts = new Map([...states].map(([id, state]) => [id, state.eventCount]));
    const isNew = (event: IncomingEvent, i: number) => keys.firstIndex.get(event.key) === i;
    const { outcomes, write, folded } = this.#fold(events, keys, isNew, states, new Set(), guessedCounts);
    // Remembered before the commit: a batch that starts meanwhile folds on top of this one's states
    // (and its guess fails if this commit does).
    this.#remember(folded);
    const [, written, committed] = await Promise.allSettled(
      inOneWrite(client, () => [
        client.query('BEGIN'),
        client.query(write.sql, write.params),
        client.query('COMMIT'),
      ]),
    );
    for (const result of [written, committed]) {
      if (result?.status !== 'rejected') continue;
      this.#forget(keys.objectIds);
      if (isStaleGuess(result.reason)) {
        this.paths.staleGuesses++;
        return undefined;
      }
      throw result.reason;
    }
    this.paths.guessed++;
    return outcomes;
  }

  /**
   * The locked path, in two round trips on a connection in pipeline mode with no transaction open
   * (`transaction(…, { ownStatements: true })`): BEGIN with the two reads (the objects' locks and
   * states, then which keys are stored), the fold in memory, then the one write statement with COMMIT.
   * The reads write nothing, so a BEGIN that failed cannot leave half a batch committed: its error
   * stops the batch before the write is sent.
   */
  async #commitLocked(
    client: PoolClient,
    events: readonly IncomingEvent[],
    keys: BatchKeys,
    end: CommitEnd,
  ): Promise<CommitOutcome[]> {
    const [, locked, stored] = await Promise.all(
      inOneWrite(client, () => [
        client.query('BEGIN'),
        client.query<ObjectStateRow & QueryResultRow>(LOCK_OBJECTS_SQL, [keys.objectIds]),
        client.query<{ delivery_key: string }>(STORED_KEYS_SQL, [[...keys.firstIndex.keys()]]),
      ]),
    );
    const storedKeys = new Set(stored.rows.map((r) => r.delivery_key));
    const states = new Map(locked.rows.map((row) => [row.id, objectStateFromRow(row)]));
    const isNew = (event: IncomingEvent, i: number) =>
      !storedKeys.has(event.key) && keys.firstIndex.get(event.key) === i;
    const { outcomes, write, folded } = this.#fold(events, keys, isNew, states, storedKeys, undefined);
    if (end === 'commit') {
      try {
        // If the write fails, PostgreSQL ends the aborted transaction at this COMMIT by rolling back.
        await Promise.all(
          inOneWrite(client, () => [client.query(write.sql, write.params), client.query('COMMIT')]),
        );
      } catch (error) {
        this.#forget(keys.objectIds);
        throw error;
      }
      this.#remember(folded);
      this.paths.locked++;
    } else {
      await client.query(write.sql, write.params);
    }
    return outcomes;
  }

  /** Folds the batch over `states` (updated in place) and builds its write statement. */
  #fold(
    events: readonly IncomingEvent[],
    { occurrences }: BatchKeys,
    isNew: (event: IncomingEvent, i: number) => boolean,
    states: Map<string, ObjectState>,
    storedKeys: ReadonlySet<string>,
    guessedCounts: ReadonlyMap<string, number> | undefined,
  ): { outcomes: CommitOutcome[]; write: { sql: string; params: unknown[] }; folded: ObjectState[] } {
    const existing = new Set(states.keys());
    const { outcomes, summaries, conflicts, transitions } = foldBatch(events, isNew, states);
    const newEvents = events.filter(isNew);
    // In id order: a guessed write takes its row locks as it updates, in the order of its rows.
    const folded = [...new Set(newEvents.map((e) => e.object.id))]
      .sort()
      .map((id) => states.get(id))
      .filter((s): s is ObjectState => s !== undefined);
    const write = writeBatchQuery(
      {
        events: newEvents,
        repeats: new Map(newEvents.map((e) => [e.key, (occurrences.get(e.key) ?? 1) - 1])),
        conflicts: new Set(conflicts),
        duplicates: new Map([...storedKeys].map((key) => [key, occurrences.get(key) ?? 1])),
        created: folded.filter((s) => !existing.has(s.id)),
        updated: folded.filter((s) => existing.has(s.id)),
        summaries,
        transitions,
        recordedAtMs: Date.now(),
        ...(guessedCounts === undefined ? {} : { guessedCounts }),
      },
      this.#sequence,
    );
    return { outcomes, write, folded };
  }

  #remember(states: readonly ObjectState[]): void {
    for (const state of states) {
      this.#known.delete(state.id);
      this.#known.set(state.id, state);
    }
    for (const id of this.#known.keys()) {
      if (this.#known.size <= KNOWN_STATES) break;
      this.#known.delete(id);
    }
  }

  #forget(ids: readonly string[]): void {
    for (const id of ids) this.#known.delete(id);
  }

  /** Appends the rejections in one statement, then trims the log to its limits. */
  async recordRejections(
    client: PoolClient,
    rows: readonly NewRejection[],
    limits: RejectionLimits,
  ): Promise<void> {
    const params = rows.flatMap((row) => insertRejectionParams(orderedId('rej_'), row));
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
 * Runs `work` in one transaction on a pooled connection; a deadlock, a serialization failure or a lost
 * insert race runs the whole transaction again (up to COMMIT_ATTEMPTS, after a pause timed by `clock`),
 * and errors come out as store errors. With `ownStatements`, `work` sends BEGIN and COMMIT itself (to
 * pipeline them with its first and last statements); a failure is still rolled back here.
 */
export async function transaction<T>(
  connect: (doing: string) => Promise<PoolClient>,
  location: string,
  doing: string,
  work: (client: PoolClient) => Promise<T>,
  clock: Clock = HOLDING_CLOCK,
  { ownStatements = false }: { ownStatements?: boolean } = {},
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const client = await connect(doing);
    let broken: Error | undefined;
    // A connection lost between two statements emits here, not on a query.
    const onError = (error: Error) => (broken = error);
    client.on('error', onError);
    try {
      if (!ownStatements) await client.query('BEGIN');
      const result = await work(client);
      if (!ownStatements) await client.query('COMMIT');
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
