import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { SqlValue } from '../statements.js';
import { openSqliteStore } from './sqlite-store.js';

/**
 * SQLite's `EXPLAIN QUERY PLAN` of each query on a fresh database with Inlet's schema: the details of
 * each plan's steps (`SCAN t` reads every row; `SEARCH t USING COVERING INDEX i` an index alone).
 */
export async function queryPlans(
  queries: readonly { sql: string; params?: SqlValue[] }[],
): Promise<string[][]> {
  const dir = await mkdtemp(join(tmpdir(), 'inlet-sqlite-plan-'));
  const path = join(dir, 'inlet.db');
  try {
    await (await openSqliteStore(path, { mode: 'serve' })).close();
    const db = new Database(path, { readonly: true });
    try {
      return queries.map(({ sql, params = [] }) =>
        (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as { detail: string }[]).map(
          (row) => row.detail,
        ),
      );
    } finally {
      db.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
