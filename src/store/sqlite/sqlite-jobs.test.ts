import { describe, expect, it } from 'vitest';
import { CONSUMER_COUNTS_SQL } from '../sql-jobs.js';
import { queryPlans } from './query-plan.test-suite.js';

describe('sqlite job SQL', () => {
  it("counts a consumer's pending and dead messages from an index alone, never reading the rows", async () => {
    const [plan] = await queryPlans([{ sql: CONSUMER_COUNTS_SQL, params: ['app', 'app'] }]);
    // What `GET /api/destinations` runs on every call: a backlog of pending messages must not mean a
    // read of each (the oldest pending `recorded_at` does, and only the lag gauge asks for it).
    const reads = plan!.filter((detail) => detail.includes('messages'));
    expect(reads).toHaveLength(2);
    for (const detail of reads) expect(detail).toMatch(/^SEARCH messages USING COVERING INDEX/);
  });
});
