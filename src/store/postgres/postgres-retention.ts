import { SqlRetentionStore } from '../sql-retention.js';
import { createPostgresExecutor, type PostgresRecoverHooks } from './postgres-recover.js';

/** Retention on PostgreSQL: the shared SQL, each window's deletes in one transaction. */
export function createPostgresRetentionStore(hooks: PostgresRecoverHooks): SqlRetentionStore {
  return new SqlRetentionStore(createPostgresExecutor(hooks));
}
