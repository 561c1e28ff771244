import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRetentionContract } from '../retention-contract.test-suite.js';
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
