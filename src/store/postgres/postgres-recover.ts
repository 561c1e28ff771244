import type { PoolClient } from 'pg';
import { SqlRecoverStore, type SqlExecutor } from '../sql-recover.js';
import { numberPlaceholders, type SqlQuery } from '../statements.js';

export interface PostgresRecoverHooks {
  transaction<T>(doing: string, work: (client: PoolClient) => Promise<T>): Promise<T>;
  query<Row>(doing: string, query: SqlQuery): Promise<Row[]>;
}

/** The shared SQL's executor on PostgreSQL: each write's statements in one transaction. */
export function createPostgresExecutor(hooks: PostgresRecoverHooks): SqlExecutor {
  return {
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
  };
}

/** The reconcile and archive tables on PostgreSQL. */
export function createPostgresRecoverStore(hooks: PostgresRecoverHooks): SqlRecoverStore {
  return new SqlRecoverStore(createPostgresExecutor(hooks));
}
