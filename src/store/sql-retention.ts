/**
 * Retention's SQL, shared by both dialects (`?` placeholders; `numberPlaceholders` for PostgreSQL).
 * Each table is walked by its `seq` (the primary key, so a window costs the same however large the
 * table is), and every "still needed" test is an index lookup by object id.
 */
import type {
  LaggingConsumer,
  PruneTable,
  PruneWindow,
  PruneWindowResult,
  RetentionStore,
} from './retention-types.js';
import type { SqlExecutor } from './sql-recover.js';
import { toNumber, type SqlQuery, type SqlValue } from './statements.js';

/** Reads, and writes in one transaction; the same executor the recover tables use. */
export type RetentionExecutor = SqlExecutor;

/** The time each table's rows are numbered in (rows arrive in `seq` order, give or take a batch). */
const TIME_COLUMN: Record<PruneTable, string> = {
  messages: 'created_at',
  transitions: 'recorded_at',
  events: 'received_at',
  rejections: 'received_at',
};

/** Params: after seq, limit. */
function windowSql(table: PruneTable): string {
  return `SELECT COUNT(*) AS n, MAX(seq) AS last_seq, MIN(at) AS first_at
  FROM (SELECT seq, ${TIME_COLUMN[table]} AS at FROM ${table} WHERE seq > ? ORDER BY seq LIMIT ?) w`;
}

// Each WHERE takes the params: after seq, last seq, cutoff. The unary `+` keeps the planners on the
// seq range: an index on the time (transitions_recorded, events_received) would scan every old row.

const MESSAGES_WHERE = `seq > ? AND seq <= ? AND state = 'delivered' AND +delivered_at < ?`;

// A transition is the body of its messages: it stays while one of them may still be sent, and until
// every enabled consumer has fanned it out (a disabled one resumes from its position with what is left).
const TRANSITIONS_WHERE = `t.seq > ? AND t.seq <= ? AND +t.recorded_at < ?
  AND NOT EXISTS (SELECT 1 FROM consumers c WHERE c.enabled = 1 AND c.position < t.seq)
  AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.object_id = t.object_id AND m.transition_seq = t.seq
    AND m.state <> 'delivered')`;

// An event is the body of its object's folded state when it won, and of the transitions it caused.
const EVENTS_WHERE = `e.seq > ? AND e.seq <= ? AND +e.received_at < ?
  AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = e.object_id AND o.winning_event_key = e.delivery_key)
  AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.object_id = e.object_id AND t.event_key = e.delivery_key)`;

// A dry run deletes no transition first: an event counts when the transitions naming it would go too.
// Params: after seq, last seq, cutoff, cutoff.
const EVENTS_DRY_RUN_WHERE = `e.seq > ? AND e.seq <= ? AND +e.received_at < ?
  AND NOT EXISTS (SELECT 1 FROM objects o WHERE o.id = e.object_id AND o.winning_event_key = e.delivery_key)
  AND NOT EXISTS (SELECT 1 FROM transitions t WHERE t.object_id = e.object_id AND t.event_key = e.delivery_key
    AND (t.recorded_at >= ?
      OR EXISTS (SELECT 1 FROM consumers c WHERE c.enabled = 1 AND c.position < t.seq)
      OR EXISTS (SELECT 1 FROM messages m WHERE m.object_id = t.object_id AND m.transition_seq = t.seq
        AND m.state <> 'delivered')))`;

const REJECTIONS_WHERE = 'seq > ? AND seq <= ? AND +received_at < ?';

function countQueries(table: PruneTable, params: SqlValue[]): SqlQuery[] {
  switch (table) {
    case 'messages':
      return [
        { sql: `SELECT COUNT(*) AS n FROM messages WHERE ${MESSAGES_WHERE}`, params },
        {
          sql: `SELECT COUNT(*) AS n FROM message_attempts
  WHERE message_id IN (SELECT id FROM messages WHERE ${MESSAGES_WHERE})`,
          params,
        },
      ];
    case 'transitions':
      return [{ sql: `SELECT COUNT(*) AS n FROM transitions t WHERE ${TRANSITIONS_WHERE}`, params }];
    case 'events':
      return [
        {
          sql: `SELECT COUNT(*) AS n FROM events e WHERE ${EVENTS_DRY_RUN_WHERE}`,
          params: [...params, params[2]!],
        },
      ];
    case 'rejections':
      return [{ sql: `SELECT COUNT(*) AS n FROM rejections WHERE ${REJECTIONS_WHERE}`, params }];
  }
}

/** In this order: no attempt outlives its message. */
function deleteQueries(table: PruneTable, params: SqlValue[]): SqlQuery[] {
  switch (table) {
    case 'messages':
      return [
        {
          sql: `DELETE FROM message_attempts
  WHERE message_id IN (SELECT id FROM messages WHERE ${MESSAGES_WHERE})`,
          params,
        },
        { sql: `DELETE FROM messages WHERE ${MESSAGES_WHERE}`, params },
      ];
    case 'transitions':
      // PostgreSQL takes no alias on DELETE's table without AS; both accept `AS t`.
      return [{ sql: `DELETE FROM transitions AS t WHERE ${TRANSITIONS_WHERE}`, params }];
    case 'events':
      return [{ sql: `DELETE FROM events AS e WHERE ${EVENTS_WHERE}`, params }];
    case 'rejections':
      return [{ sql: `DELETE FROM rejections WHERE ${REJECTIONS_WHERE}`, params }];
  }
}

/**
 * The first and last `seq`: one subquery each. SQLite reads a `MIN` or a `MAX` from the end of the
 * primary key only when it is the query's one aggregate; `SELECT MIN(seq), MAX(seq)` scans the whole
 * table (165 ms on the event loop at a million rows, a stall of every delivery as a prune began).
 */
export function seqRangeSql(table: PruneTable): string {
  return `SELECT (SELECT MIN(seq) FROM ${table}) AS first, (SELECT MAX(seq) FROM ${table}) AS last`;
}

/** Params: cutoff. */
const LAGGING_CONSUMER_SQL = `SELECT c.name, c.position FROM consumers c
  WHERE c.enabled = 1
    AND EXISTS (SELECT 1 FROM transitions t WHERE t.recorded_at < ? AND t.seq > c.position)
  ORDER BY c.position, c.name LIMIT 1`;

interface WindowRow {
  n: unknown;
  last_seq: unknown;
  first_at: unknown;
}

/** Retention on any dialect's executor. */
export class SqlRetentionStore implements RetentionStore {
  #exec: RetentionExecutor;

  constructor(executor: RetentionExecutor) {
    this.#exec = executor;
  }

  async pruneWindow(window: PruneWindow): Promise<PruneWindowResult> {
    const { table, cutoffMs, afterSeq, limit, dryRun } = window;
    const [found] = await this.#exec.all<WindowRow>(`reading ${table} to prune`, {
      sql: windowSql(table),
      params: [afterSeq, limit],
    });
    const n = found === undefined ? 0 : toNumber(found.n);
    if (found === undefined || n === 0) return { deleted: 0, attempts: 0, lastSeq: afterSeq, done: true };
    const lastSeq = toNumber(found.last_seq);
    const done = toNumber(found.first_at) >= cutoffMs || n < limit;
    const params: SqlValue[] = [afterSeq, lastSeq, cutoffMs];
    let counts: number[];
    if (dryRun) {
      counts = [];
      for (const query of countQueries(table, params)) {
        const [row] = await this.#exec.all<{ n: unknown }>(`counting ${table} to prune`, query);
        counts.push(row === undefined ? 0 : toNumber(row.n));
      }
      if (table === 'messages') counts.reverse();
    } else {
      counts = await this.#exec.write(`pruning ${table}`, deleteQueries(table, params));
    }
    // Messages answer [attempts, messages]; every other table one count.
    const deleted = table === 'messages' ? (counts[1] ?? 0) : (counts[0] ?? 0);
    const attempts = table === 'messages' ? (counts[0] ?? 0) : 0;
    return { deleted, attempts, lastSeq, done };
  }

  async seqRange(table: PruneTable): Promise<{ first: number; last: number }> {
    const [row] = await this.#exec.all<{ first: unknown; last: unknown }>(`reading ${table}`, {
      sql: seqRangeSql(table),
      params: [],
    });
    if (row === undefined || row.first === null) return { first: 0, last: -1 };
    return { first: toNumber(row.first), last: toNumber(row.last) };
  }

  async laggingConsumer(cutoffMs: number): Promise<LaggingConsumer | undefined> {
    const [row] = await this.#exec.all<{ name: string; position: unknown }>('reading consumer positions', {
      sql: LAGGING_CONSUMER_SQL,
      params: [cutoffMs],
    });
    return row === undefined ? undefined : { name: row.name, position: toNumber(row.position) };
  }

  async referencedFiles(sha256s: readonly string[]): Promise<Set<string>> {
    const found = new Set<string>();
    // Bounded IN lists: SQLite allows 32,766 parameters, PostgreSQL 65,535.
    for (let i = 0; i < sha256s.length; i += 500) {
      const chunk = sha256s.slice(i, i + 500);
      const rows = await this.#exec.all<{ sha256: string }>('reading archived files', {
        sql: `SELECT DISTINCT sha256 FROM archive_files WHERE sha256 IN (${chunk.map(() => '?').join(', ')})`,
        params: [...chunk],
      });
      for (const row of rows) found.add(row.sha256);
    }
    return found;
  }
}
