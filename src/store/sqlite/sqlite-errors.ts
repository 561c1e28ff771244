import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { StoreOpenError, StoreUnavailableError } from '../errors.js';

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

/** Codes that may clear up by themselves while `serve` waits: another process's lock, a full or flaky disk. */
const TRANSIENT_AT_OPEN = new Set([
  'SQLITE_BUSY',
  'SQLITE_LOCKED',
  'SQLITE_IOERR',
  'SQLITE_FULL',
  'SQLITE_NOMEM',
  'SQLITE_PROTOCOL',
  'SQLITE_NOLCK',
  'SQLITE_INTERRUPT',
]);

const FIX_SETTING = '--database (DATABASE_URL)';

/** Filesystem error codes that mean the path itself is wrong (a file where a directory should be). */
const WRONG_PATH_ERRNOS = new Set(['ENOTDIR', 'EEXIST', 'ENAMETOOLONG', 'ELOOP', 'EISDIR']);
/** Filesystem error codes that mean this user may not write there. */
const READ_ONLY_ERRNOS = new Set(['EACCES', 'EPERM', 'EROFS']);

/**
 * Why `serve` could not open the SQLite database at `location`: `StoreUnavailableError` when trying
 * again may work, else `StoreOpenError` naming the problem in words.
 */
export function openFailure(error: unknown, location: string): Error {
  if (error instanceof StoreOpenError || error instanceof StoreUnavailableError) return error;
  const errno = (error as NodeJS.ErrnoException | null)?.code;
  if (!(error instanceof Database.SqliteError) && typeof errno === 'string') {
    if (WRONG_PATH_ERRNOS.has(errno)) {
      return new StoreOpenError(
        `${location}: the path cannot hold a database file (${errno}: part of it is a file, not a directory) — fix ${FIX_SETTING}`,
        'configuration',
        { cause: error },
      );
    }
    if (READ_ONLY_ERRNOS.has(errno)) return readOnly(location, errno, error);
    return new StoreUnavailableError(`Cannot prepare SQLite database ${location} (${errno})`, {
      cause: error,
    });
  }
  if (!(error instanceof Database.SqliteError)) {
    return new StoreOpenError(
      `${location}: ${error instanceof Error ? error.message : String(error)}`,
      'environment',
      { cause: error },
    );
  }
  const primary = /^SQLITE_[A-Z]+/.exec(error.code)?.[0] ?? error.code;
  if (TRANSIENT_AT_OPEN.has(primary)) return toStoreError(error, 'opening', location);
  switch (primary) {
    case 'SQLITE_NOTADB':
      return new StoreOpenError(
        `${location} is not a SQLite database (SQLite: "${error.message}") — point ${FIX_SETTING} at an Inlet database, or at a path where one can be created`,
        'configuration',
        { cause: error },
      );
    case 'SQLITE_CANTOPEN':
    case 'SQLITE_READONLY':
    case 'SQLITE_PERM':
      return readOnly(location, primary, error);
    case 'SQLITE_CORRUPT':
      return new StoreOpenError(
        `${location} is damaged (SQLite: "${error.message}") — restore it from a backup, or move it aside to start a new one`,
        'environment',
        { cause: error },
      );
    default:
      return new StoreOpenError(
        `${location} cannot be opened (${error.code}: ${error.message})`,
        'environment',
        {
          cause: error,
        },
      );
  }
}

function readOnly(location: string, code: string, cause: unknown): StoreOpenError {
  return new StoreOpenError(
    `${location} cannot be written (${code}: a read-only location, or this user lacks permission) — make ${dirname(location)} and the file writable by this user, or choose another path with ${FIX_SETTING}`,
    'environment',
    { cause },
  );
}
