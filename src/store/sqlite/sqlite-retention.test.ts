import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runRetentionContract } from '../retention-contract.test-suite.js';
import { PRUNE_TABLES } from '../retention-types.js';
import { seqRangeSql } from '../sql-retention.js';
import { queryPlans } from './query-plan.test-suite.js';
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
    const plans = await queryPlans(PRUNE_TABLES.map((table) => ({ sql: seqRangeSql(table) })));
    PRUNE_TABLES.forEach((table, i) => {
      const plan = plans[i]!;
      // `SCAN <table>` would read every row; `SEARCH <table>` reads one end of the primary key.
      expect(plan.filter((detail) => detail.startsWith(`SCAN ${table}`))).toEqual([]);
      expect(plan.filter((detail) => detail.startsWith(`SEARCH ${table}`))).toHaveLength(2);
    });
  });
});
