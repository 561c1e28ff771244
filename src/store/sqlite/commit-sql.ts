/** The statements only SQLite's writer runs (one row each, prepared once); PostgreSQL's writer has its own. */
import type { ObjectState } from '../object-state.js';
import { OBJECT_STATE_COLUMNS, objectStateValues, TRANSITION_COLUMNS, type SqlValue } from '../statements.js';

const STATE_COLUMNS = OBJECT_STATE_COLUMNS.join(', ');

/** Params: `insertEventParams(event)`. */
export const INSERT_EVENT_SQL = `INSERT INTO events
  (delivery_key, object_id, status, scheme, received_at, webhook_ts, headers, body, duplicates, conflict)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, 0)
  ON CONFLICT (delivery_key) DO NOTHING`;

/** Params: delivery key. */
export const COUNT_DUPLICATE_SQL = 'UPDATE events SET duplicates = duplicates + 1 WHERE delivery_key = ?';
/** Params: delivery key. */
export const FLAG_CONFLICT_SQL = 'UPDATE events SET conflict = 1 WHERE delivery_key = ?';
/** Params: object id. */
export const SELECT_OBJECT_STATE_SQL = `SELECT ${STATE_COLUMNS} FROM objects WHERE id = ?`;

export const INSERT_OBJECT_SQL = `INSERT INTO objects (${STATE_COLUMNS}, summary)
  VALUES (${[...OBJECT_STATE_COLUMNS, 'summary'].map(() => '?').join(', ')})`;

export function insertObjectParams(state: ObjectState, summaryJson: string): SqlValue[] {
  return [...objectStateValues(state), summaryJson];
}

/** The event replaced the folded object. */
export const REPLACE_OBJECT_SQL = `UPDATE objects SET
  ${OBJECT_STATE_COLUMNS.slice(1)
    .map((column) => `${column} = ?`)
    .join(', ')}, summary = ?
  WHERE id = ?`;

export function replaceObjectParams(state: ObjectState, summaryJson: string): SqlValue[] {
  return [...objectStateValues(state).slice(1), summaryJson, state.id];
}

/** The event was kept but not applied (ignored or conflict): only counters and times move. */
export const TOUCH_OBJECT_SQL = `UPDATE objects SET kind = ?, event_count = ?, conflict_count = ?, last_received_at = ?
  WHERE id = ?`;

export function touchObjectParams(state: ObjectState): SqlValue[] {
  return [state.kind, state.eventCount, state.conflictCount, state.lastReceivedAtMs, state.id];
}

/** Params: `newTransitionValues(transition, recordedAtMs)`. */
export const INSERT_TRANSITION_SQL = `INSERT INTO transitions (${TRANSITION_COLUMNS.join(', ')})
  VALUES (${TRANSITION_COLUMNS.map(() => '?').join(', ')})`;
