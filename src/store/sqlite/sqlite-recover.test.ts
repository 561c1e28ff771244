import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runRecoverContract } from '../recover-contract.test-suite.js';
import { openSqliteStore } from './sqlite-store.js';

runRecoverContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inlet-sqlite-recover-'));
  const store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
  return {
    store,
    cleanup: async () => {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});
