/** The store cannot commit or answer right now (locked, disk error, connection lost): retryable. */
export class StoreUnavailableError extends Error {
  override readonly name = 'StoreUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A read-only command pointed at a database that does not exist (it never creates one). */
export class DatabaseNotFoundError extends Error {
  override readonly name = 'DatabaseNotFoundError';
}

/** A database URL or path that cannot name a store. */
export class InvalidDatabaseUrlError extends Error {
  override readonly name = 'InvalidDatabaseUrlError';
}

/** Why opening a store failed for good: a setting to fix (`serve` exits 2), or the machine (exit 1). */
export const STORE_OPEN_FAILURES = ['configuration', 'environment'] as const;
export type StoreOpenFailure = (typeof STORE_OPEN_FAILURES)[number];

/**
 * The store cannot be opened and trying again will not help (a directory as the path, a database that
 * does not exist, a foreign schema, a read-only location): `serve` stops instead of retrying. The
 * message names the problem and what to do, never only the driver's words.
 */
export class StoreOpenError extends Error {
  override readonly name = 'StoreOpenError';
  constructor(
    message: string,
    readonly failure: StoreOpenFailure,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Tables of the same names as Inlet's that Inlet did not make: `serve` neither migrates nor writes them. */
export function foreignSchemaError(location: string, problem: string): StoreOpenError {
  return new StoreOpenError(
    `${location} is not an Inlet database: ${problem} — point --database (DATABASE_URL) at a new database, or at a schema of its own`,
    'configuration',
  );
}

/** A schema migrated by a newer Inlet than this one. */
export function newerSchemaError(location: string, unknownMigrations: readonly number[]): StoreOpenError {
  return new StoreOpenError(
    `${location} was migrated by a newer Inlet (unknown migrations ${unknownMigrations.join(', ')}) — upgrade Inlet`,
    'environment',
  );
}
