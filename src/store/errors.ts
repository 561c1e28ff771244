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
