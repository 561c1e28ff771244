import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { CONSUMER_COUNTS_SQL } from '../sql-jobs.js';
import { openSqliteStore } from './sqlite-store.js';

describe('sqlite job SQL', () => {
  it("counts a consumer's pending and dead messages from an index alone, never reading the rows", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'inlet-sqlite-jobs-plan-'));
    const path = join(dir, 'inlet.db');
    try {
      await (await openSqliteStore(path, { mode: 'serve' })).close();
      const db = new Database(path, { readonly: true });
      try {
        const plan = (
          db.prepare(`EXPLAIN QUERY PLAN ${CONSUMER_COUNTS_SQL}`).all('app', 'app') as { detail: string }[]
        ).map((row) => row.detail);
        // What `GET /api/destinations` runs on every call: a backlog of pending messages must not mean
        // a read of each (the oldest pending `recorded_at` does, and only the lag gauge asks for it).
        const reads = plan.filter((detail) => detail.includes('messages'));
        expect(reads).toHaveLength(2);
        for (const detail of reads) expect(detail).toMatch(/^SEARCH messages USING COVERING INDEX/);
      } finally {
        db.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
