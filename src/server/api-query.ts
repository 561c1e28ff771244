import { decodePredictionCursor, decodeSeqCursor } from '../store/cursor.js';
import type { PredictionQuery, SeqQuery } from '../store/types.js';

/** A query parameter that cannot be used: answered 400 `invalid_query`. */
export class InvalidQueryError extends Error {
  override readonly name = 'InvalidQueryError';
}

export type QueryParams = Record<string, string | string[] | undefined>;

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;

/** An empty parameter counts as absent; a repeated one is refused rather than guessed at. */
function param(query: QueryParams, name: string): string | undefined {
  const value = query[name];
  if (Array.isArray(value)) throw new InvalidQueryError(`"${name}" may be given once.`);
  return value === undefined || value === '' ? undefined : value;
}

export function parseLimit(query: QueryParams): number {
  const text = param(query, 'limit');
  if (text === undefined) return DEFAULT_LIMIT;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_LIMIT) {
    throw new InvalidQueryError(`"limit" must be a whole number from 1 to ${MAX_LIMIT}; got "${text}".`);
  }
  return value;
}

const DEFAULT_STATS_MINUTES = 60;
const MAX_STATS_MINUTES = 1440;

/** `minutes` of `GET /api/stats/deliveries`: 1 to a day, 60 when absent. */
export function parseStatsMinutes(query: QueryParams): number {
  const text = param(query, 'minutes');
  if (text === undefined) return DEFAULT_STATS_MINUTES;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isInteger(value) || value < 1 || value > MAX_STATS_MINUTES) {
    throw new InvalidQueryError(
      `"minutes" must be a whole number from 1 to ${MAX_STATS_MINUTES}; got "${text}".`,
    );
  }
  return value;
}

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * RFC 3339 to epoch ms, refusing impossible dates (Feb 30, hour 24) instead of rolling them over.
 * Sub-millisecond digits round toward the inside of the range, so bounds stay inclusive and exact.
 */
function parseRfc3339(text: string, bound: 'since' | 'until'): number | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const fraction = m[7] ?? '';
  const local = Date.UTC(year, month - 1, day, hour, minute, second);
  const check = new Date(local);
  if (
    check.getUTCFullYear() !== year ||
    check.getUTCMonth() !== month - 1 ||
    check.getUTCDate() !== day ||
    check.getUTCHours() !== hour ||
    check.getUTCMinutes() !== minute ||
    check.getUTCSeconds() !== second
  ) {
    return undefined;
  }
  let ms = Number(fraction.slice(0, 3).padEnd(3, '0'));
  if (bound === 'since' && /[1-9]/.test(fraction.slice(3))) ms += 1;
  const offsetMin = m[9] === undefined ? 0 : (m[9] === '-' ? -1 : 1) * (Number(m[10]) * 60 + Number(m[11]));
  if (Number(m[10] ?? 0) > 23 || Number(m[11] ?? 0) > 59) return undefined;
  return local + ms - offsetMin * 60_000;
}

/** An RFC 3339 bound as epoch ms; throws `InvalidQueryError` naming the field. */
export function parseRfc3339Bound(text: string, name: 'since' | 'until'): number {
  const ms = parseRfc3339(text, name);
  if (ms === undefined)
    throw new InvalidQueryError(
      `"${name}" must be an RFC 3339 time like 2026-11-27T13:38:07Z; got "${text}".`,
    );
  return ms;
}

function parseTime(query: QueryParams, name: 'since' | 'until'): number | undefined {
  const text = param(query, name);
  if (text === undefined) return undefined;
  const ms = parseRfc3339(text, name);
  if (ms === undefined)
    throw new InvalidQueryError(
      `"${name}" must be an RFC 3339 time like 2026-11-27T13:38:07Z; got "${text}".`,
    );
  return ms;
}

const BAD_CURSOR = '"cursor" is not a cursor this API gave out.';

function parseSeqCursor(query: QueryParams): number | undefined {
  const text = param(query, 'cursor');
  if (text === undefined) return undefined;
  const seq = decodeSeqCursor(text);
  if (seq === undefined) throw new InvalidQueryError(BAD_CURSOR);
  return seq;
}

export function parseSeqQuery(query: QueryParams): SeqQuery {
  const limit = parseLimit(query);
  const after = parseSeqCursor(query);
  return after === undefined ? { limit } : { limit, after };
}

export function parsePredictionQuery(query: QueryParams): PredictionQuery {
  const result: PredictionQuery = { limit: parseLimit(query) };
  const status = param(query, 'status');
  if (status !== undefined) {
    const statuses = status.split(',').map((s) => s.trim());
    if (statuses.some((s) => s === ''))
      throw new InvalidQueryError(`"status" must be one status or a comma list; got "${status}".`);
    result.statuses = statuses;
  }
  const model = param(query, 'model');
  if (model !== undefined) result.model = model;
  const q = param(query, 'q');
  if (q !== undefined) result.q = q;
  const sinceMs = parseTime(query, 'since');
  if (sinceMs !== undefined) result.sinceMs = sinceMs;
  const untilMs = parseTime(query, 'until');
  if (untilMs !== undefined) result.untilMs = untilMs;
  const cursor = param(query, 'cursor');
  if (cursor !== undefined) {
    const after = decodePredictionCursor(cursor);
    if (after === undefined) throw new InvalidQueryError(BAD_CURSOR);
    result.after = after;
  }
  return result;
}
