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
  /**
   * `serve` mode on SQLite: refresh the planner's statistics when closing (`PRAGMA optimize`, SQLite's
   * advice for long-lived connections). It writes, so it holds the writer for a moment (~0.15 s on a
   * large database): CLI verbs that write beside a running `serve` turn it off. Default true.
   */
  optimizeOnClose?: boolean;
}
