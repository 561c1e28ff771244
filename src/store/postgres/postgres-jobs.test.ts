import { afterAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  postgresOrSkip,
  queryOnce,
  type TestDatabase,
} from '../../../test/pg-helpers.js';
import { TRANSITIONS_CHANNEL } from './postgres-jobs.js';
import { openPostgresStore } from './postgres-store.js';

const probe = await postgresOrSkip('the PostgreSQL job store tests');
let database: Promise<TestDatabase> | undefined;
afterAll(async () => {
  if (database !== undefined) await (await database).drop();
});

describe.skipIf(!probe.ok)('PostgreSQL job store', () => {
  it('hears other processes announce transitions, and stops listening', async () => {
    database ??= createTestDatabase(probe.ok ? probe.adminUrl : '', 'inlet_test_jobs');
    const url = await (await database).freshSchema();
    const store = await openPostgresStore(url, { mode: 'serve', poolSize: 3 });
    try {
      let heard = 0;
      const unwatch = await store.jobs.watchTransitions(() => heard++);
      const before = heard;
      await queryOnce(url, `NOTIFY ${TRANSITIONS_CHANNEL}`);
      const deadline = Date.now() + 5000;
      while (heard === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(heard).toBeGreaterThan(before);
      await unwatch();
      const after = heard;
      await queryOnce(url, `NOTIFY ${TRANSITIONS_CHANNEL}`);
      await new Promise((r) => setTimeout(r, 100));
      expect(heard).toBe(after);
    } finally {
      await store.close();
    }
  });
});
