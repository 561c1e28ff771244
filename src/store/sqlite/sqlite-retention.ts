import type Database from 'better-sqlite3';
import { SqlRetentionStore } from '../sql-retention.js';
import type { SqlQuery, SqlValue } from '../statements.js';
import type { SqliteRecoverHooks } from './sqlite-recover.js';

/** Retention on SQLite: the shared SQL, each window's deletes in one better-sqlite3 transaction. */
export function createSqliteRetentionStore(hooks: SqliteRecoverHooks): SqlRetentionStore {
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
  return new SqlRetentionStore({
    all: async <Row>(doing: string, query: SqlQuery) =>
      hooks.read(doing, () => prepare(query.sql).all(...query.params) as Row[]),
    write: (doing, queries) =>
      hooks.write(doing, () =>
        db
          .transaction(() => queries.map((query) => prepare(query.sql).run(...query.params).changes))
          .immediate(),
      ),
  });
}
