import { SqlRetentionStore } from '../sql-retention.js';
import { createSqliteExecutor, type SqliteRecoverHooks } from './sqlite-recover.js';

/** Retention on SQLite: the shared SQL, each window's deletes in one transaction. */
export function createSqliteRetentionStore(hooks: SqliteRecoverHooks): SqlRetentionStore {
  return new SqlRetentionStore(createSqliteExecutor(hooks));
}
