import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { runRetentionContract } from '../retention-contract.test-suite.js';
import { PRUNE_TABLES } from '../retention-types.js';
import { seqRangeSql } from '../sql-retention.js';
import { openSqliteStore } from './sqlite-store.js';

runRetentionContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inlet-sqlite-retention-'));
  const store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite retention SQL', () => {
  it("reads each table's seq range from the ends of its primary key, never by scanning the table", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inlet-sqlite-retention-plan-'));
    const path = join(dir, 'inlet.db');
    try {
      await (await openSqliteStore(path, { mode: 'serve' })).close();
      const db = new Database(path, { readonly: true });
      try {
        for (const table of PRUNE_TABLES) {
          const plan = (
            db.prepare(`EXPLAIN QUERY PLAN ${seqRangeSql(table)}`).all() as { detail: string }[]
          ).map((row) => row.detail);
          // `SCAN <table>` would read every row; `SEARCH <table>` reads one end of the primary key.
          expect(plan.filter((detail) => detail.startsWith(`SCAN ${table}`))).toEqual([]);
          expect(plan.filter((detail) => detail.startsWith(`SEARCH ${table}`))).toHaveLength(2);
        }
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
