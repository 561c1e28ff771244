import { afterAll } from 'vitest';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from '../../../test/pg-helpers.js';
import { runRetentionContract } from '../retention-contract.test-suite.js';
import { openPostgresStore } from './postgres-store.js';

const probe = await postgresOrSkip('the PostgreSQL retention store tests');
const adminUrl = probe.ok ? probe.adminUrl : '';

let database: Promise<TestDatabase> | undefined;
function testDatabase(): Promise<TestDatabase> {
  database ??= createTestDatabase(adminUrl, 'inlet_test_retention');
  return database;
}

afterAll(async () => {
  if (database !== undefined) await (await database).drop();
});

if (probe.ok) {
  runRetentionContract('postgres', async () => {
    const url = await (await testDatabase()).freshSchema();
    const store = await openPostgresStore(url, { mode: 'serve', poolSize: 4 });
    return { store, cleanup: () => store.close() };
  });
}
