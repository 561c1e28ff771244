import type Database from 'better-sqlite3';
import { SqlRecoverStore } from '../sql-recover.js';
import type { SqlQuery, SqlValue } from '../statements.js';

export interface SqliteRecoverHooks {
  db: Database.Database;
  /** Runs a read with the store's error mapping. */
  read<T>(doing: string, work: () => T): T;
  /** Runs a write once no checkpoint holds writes, and resolves once it is durable. */
  write<T>(doing: string, work: () => T): Promise<T>;
}

/** The reconcile and archive tables on SQLite: the shared SQL in better-sqlite3 transactions. */
export function createSqliteRecoverStore(hooks: SqliteRecoverHooks): SqlRecoverStore {
  const { db } = hooks;
  const statements = new Map<string, Database.Statement<SqlValue[]>>();
  const prepare = (sql: string) => {
    let statement = statements.get(sql);
    if (statement === undefined) {
      statement = db.prepare<SqlValue[]>(sql);
      statements.set(sql, statement);
    }
    return statement;
  };
  return new SqlRecoverStore({
    all: async <Row>(doing: string, query: SqlQuery) =>
      hooks.read(doing, () => prepare(query.sql).all(...query.params) as Row[]),
    write: (doing, queries) =>
      hooks.write(doing, () =>
        db.transaction(() => queries.map((query) => prepare(query.sql).run(...query.params).changes))(),
      ),
  });
}
