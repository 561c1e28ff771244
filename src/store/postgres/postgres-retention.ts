import { SqlRetentionStore } from '../sql-retention.js';
import { numberPlaceholders } from '../statements.js';
import type { PostgresRecoverHooks } from './postgres-recover.js';

/** Retention on PostgreSQL: the shared SQL, each window's deletes in one transaction. */
export function createPostgresRetentionStore(hooks: PostgresRecoverHooks): SqlRetentionStore {
  return new SqlRetentionStore({
    all: (doing, query) => hooks.query(doing, query),
    write: (doing, queries) =>
      hooks.transaction(doing, async (client) => {
        const counts: number[] = [];
        for (const query of queries) {
          const result = await client.query(numberPlaceholders(query.sql), query.params);
          counts.push(result.rowCount ?? 0);
        }
        return counts;
      }),
  });
}
