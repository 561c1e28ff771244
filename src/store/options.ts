/** The few logger methods the store uses (a pino logger fits). */
export interface StoreLogger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
}

export const OPEN_MODES = ['serve', 'read'] as const;
export type OpenMode = (typeof OPEN_MODES)[number];

export interface OpenStoreOptions {
  /**
   * `serve` creates the database if needed and runs migrations; `read` (CLI reads) never creates or
   * changes anything and fails with `DatabaseNotFoundError` when there is no Inlet database.
   */
  mode: OpenMode;
  logger?: StoreLogger;
}
