import { StoreOpenError, StoreUnavailableError } from '../errors.js';

/** SQLSTATE classes that mean "the database cannot answer now", not a bug in our SQL. */
const UNAVAILABLE_CLASSES = new Set([
  '08', // connection exception
  '53', // insufficient resources: too many connections, disk full, out of memory
  '57', // operator intervention: admin/crash shutdown, cannot connect now, query canceled
  '58', // system error: I/O
]);

const UNAVAILABLE_CODES = new Set([
  '3D000', // invalid_catalog_name: the database does not exist (yet)
  '55000', // object_not_in_prerequisite_state: "database is not currently accepting connections"
  '55P03', // lock_not_available: lock_timeout hit
  '25006', // read_only_sql_transaction: connected to a standby after a failover
  '28000', // invalid_authorization_specification
  '28P01', // invalid_password: credentials rotated under a running server
  '40001', // serialization_failure, once our own retries are spent
  '40P01', // deadlock_detected, likewise
]);

/** Socket errors: the server is down, restarting, or the network is. */
const UNAVAILABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'ENOENT', // a Unix socket path that is not there while the server is down
]);

/** What `pg` and `pg-pool` say when a connection is lost or cannot be had in time. */
const UNAVAILABLE_MESSAGES = [
  /^Connection terminated/,
  /^timeout exceeded when trying to connect/,
  /not queryable/,
  /^Query read timeout/,
  /^Cannot use a pool after calling end on the pool/,
  /^The server does not support SSL connections/,
];

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  constraint?: unknown;
}

function errorCode(error: unknown): string | undefined {
  const code = (error as PgErrorLike | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Unique indexes only a group commit inserts into: a violation means another transaction committed
 * the same delivery or the same new object first, and running the batch again finds it stored.
 */
const COMMIT_RACE_CONSTRAINTS = new Set(['events_delivery_key_key', 'objects_pkey']);

/**
 * In the error a guessed write statement raises (a string cast to `bigint`, `22P02`) when its guessed
 * states were not the stored ones (`PostgresWriter`'s one-round-trip commit).
 */
export const STALE_GUESS = 'inlet: stale guess';

/** Whether `error` is a write statement's failed guess (the transaction is rolled back; nothing was written). */
export function isStaleGuess(error: unknown): boolean {
  const message = (error as PgErrorLike | null)?.message;
  return errorCode(error) === '22P02' && typeof message === 'string' && message.includes(STALE_GUESS);
}

/** Serialization failures, deadlocks and lost commit races: the transaction may simply be run again. */
export function isRetryableConflict(error: unknown): boolean {
  const code = errorCode(error);
  if (code === '23505') {
    const constraint = (error as PgErrorLike).constraint;
    return typeof constraint === 'string' && COMMIT_RACE_CONSTRAINTS.has(constraint);
  }
  return code === '40001' || code === '40P01';
}

export function isPostgresUnavailable(error: unknown): boolean {
  if (error instanceof StoreUnavailableError) return true;
  if (!(error instanceof Error)) return false;
  const code = errorCode(error);
  if (code !== undefined) {
    if (UNAVAILABLE_ERRNOS.has(code) || UNAVAILABLE_CODES.has(code)) return true;
    if (/^[0-9A-Z]{5}$/.test(code) && UNAVAILABLE_CLASSES.has(code.slice(0, 2))) return true;
  }
  if (UNAVAILABLE_MESSAGES.some((pattern) => pattern.test(error.message))) return true;
  // Node wraps several failed connection attempts (IPv4 and IPv6) in one AggregateError.
  if (error instanceof AggregateError) return error.errors.some(isPostgresUnavailable);
  return error.cause !== undefined && error.cause !== error && isPostgresUnavailable(error.cause);
}

/** A short reason for messages: the SQLSTATE or errno, else pg's message. */
export function describePostgresError(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof AggregateError && message === '' && error.errors.length > 0) {
    return describePostgresError(error.errors[0]);
  }
  return code === undefined ? message : `${code}: ${message}`;
}

/** Rethrows what cannot be retried; wraps what can in `StoreUnavailableError`. */
export function toStoreError(error: unknown, doing: string, location: string): Error {
  if (error instanceof StoreUnavailableError) return error;
  if (isPostgresUnavailable(error)) {
    return new StoreUnavailableError(
      `PostgreSQL database ${location} unavailable while ${doing} (${describePostgresError(error)})`,
      { cause: error },
    );
  }
  return error instanceof Error ? error : new Error(String(error));
}

const FIX_SETTING = '--database (DATABASE_URL)';

/** The driver error inside a wrapped one, whose SQLSTATE tells what went wrong. */
function driverError(error: unknown): unknown {
  return error instanceof StoreUnavailableError && error.cause !== undefined ? error.cause : error;
}

/**
 * Why `serve` could not open the PostgreSQL database at `location`: `StoreUnavailableError` when
 * trying again may work (the server is down or starting), else `StoreOpenError` in words.
 */
export function openFailure(error: unknown, location: string): Error {
  if (error instanceof StoreOpenError) return error;
  const cause = driverError(error);
  const code = errorCode(cause) ?? '';
  const said = cause instanceof Error ? cause.message : String(cause);
  const permanent = (hint: string, failure: 'configuration' | 'environment') =>
    new StoreOpenError(`${location}: ${said} — ${hint}`, failure, { cause });
  if (code === '3D000')
    return permanent(`create it (createdb, or CREATE DATABASE) or fix ${FIX_SETTING}`, 'configuration');
  if (code === '28000' || code === '28P01') {
    return permanent(
      `fix the user or password in ${FIX_SETTING}, or create the role and let it connect`,
      'configuration',
    );
  }
  if (code === '3F000')
    return permanent(`create the schema, or fix the search_path in ${FIX_SETTING}`, 'configuration');
  if (code === '42501') {
    return permanent(
      'grant this role what Inlet needs (CREATE on its schema, and SELECT, INSERT, UPDATE, DELETE on its tables), or run `inlet migrate` as their owner',
      'environment',
    );
  }
  if (isPostgresUnavailable(error)) return toStoreError(error, 'opening', location);
  return new StoreOpenError(`${location} cannot be opened (${describePostgresError(cause)})`, 'environment', {
    cause,
  });
}
