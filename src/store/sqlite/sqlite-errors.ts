import Database from 'better-sqlite3';
import { StoreUnavailableError } from '../errors.js';

/**
 * Result codes that mean "cannot commit or answer now" rather than a bug in our SQL: another process
 * holds the lock, the disk failed or is full, the file went read-only or away. Extended codes
 * (`SQLITE_IOERR_FSYNC`, `SQLITE_BUSY_SNAPSHOT`, …) are matched by their primary code.
 */
const UNAVAILABLE_PRIMARY_CODES = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_READONLY',
  'SQLITE_CANTOPEN',
  'SQLITE_PROTOCOL',
  'SQLITE_NOMEM',
  'SQLITE_NOLCK',
  'SQLITE_CORRUPT',
  'SQLITE_NOTADB',
  'SQLITE_PERM',
  'SQLITE_INTERRUPT',
]);

export function isSqliteUnavailable(error: unknown): boolean {
  if (!(error instanceof Database.SqliteError)) return false;
  const primary = /^SQLITE_[A-Z]+/.exec(error.code)?.[0];
  return primary !== undefined && UNAVAILABLE_PRIMARY_CODES.has(primary);
}

/** Rethrows what cannot be retried; wraps what can in `StoreUnavailableError`. */
export function toStoreError(error: unknown, doing: string, location: string): Error {
  if (isSqliteUnavailable(error)) {
    const code = (error as InstanceType<typeof Database.SqliteError>).code;
    return new StoreUnavailableError(`SQLite database ${location} unavailable while ${doing} (${code})`, {
      cause: error,
    });
  }
  return error instanceof Error ? error : new Error(String(error));
}
