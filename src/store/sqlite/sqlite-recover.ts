import type Database from 'better-sqlite3';
import { SqlRecoverStore, type SqlExecutor } from '../sql-recover.js';
import type { SqlQuery, SqlValue } from '../statements.js';

export interface SqliteRecoverHooks {
  db: Database.Database;
  /** Runs a read with the store's error mapping. */
  read<T>(doing: string, work: () => T): T;
  /** Runs a write once no checkpoint holds writes, and resolves once it is durable. */
  write<T>(doing: string, work: () => T): Promise<T>;
}

/**
 * The shared SQL's executor on SQLite: statements prepared once, each write's statements in one
 * better-sqlite3 transaction (`BEGIN IMMEDIATE`: it takes the write lock before reading).
 */
export function createSqliteExecutor(hooks: SqliteRecoverHooks): SqlExecutor {
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
  return {
    all: async <Row>(doing: string, query: SqlQuery) =>
      hooks.read(doing, () => prepare(query.sql).all(...query.params) as Row[]),
    write: (doing, queries) =>
      hooks.write(doing, () =>
        db
          .transaction(() => queries.map((query) => prepare(query.sql).run(...query.params).changes))
          .immediate(),
      ),
  };
}

/** The reconcile and archive tables on SQLite. */
export function createSqliteRecoverStore(hooks: SqliteRecoverHooks): SqlRecoverStore {
  return new SqlRecoverStore(createSqliteExecutor(hooks));
}
