/**
 * `inlet migrate` (both dialects) and the read commands on PostgreSQL, as a user runs them.
 * Needs `npm run build` first (npm test does it).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeEvent } from '../src/store/store-contract.test-suite.js';
import { openStore } from '../src/store/index.js';
import { tempDir } from './helpers.js';
import {
  createTestDatabase,
  postgresOrSkip,
  randomName,
  runInlet,
  urlOfDatabase,
  type TestDatabase,
} from './pg-helpers.js';

const probe = await postgresOrSkip('the PostgreSQL CLI tests');

describe('inlet migrate on SQLite', () => {
  it('creates the database, applies the migrations once, and says so', async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, 'nested', 'inlet.db');
      const first = await runInlet(['migrate', '--database', `sqlite:${path}`]);
      expect(first).toMatchObject({ code: 0, stderr: '' });
      expect(first.stdout).toMatch(/^Applied migration 1 \(events_objects_rejections\)$/m);
      expect(first.stdout).toContain(path);
      expect(existsSync(path)).toBe(true);
      const second = await runInlet(['migrate'], { DATABASE_URL: `sqlite:${path}` });
      expect(second).toMatchObject({ code: 0, stderr: '' });
      expect(second.stdout).toMatch(/^Nothing to migrate: .* is up to date at schema version \d+ /m);
    } finally {
      tmp.cleanup();
    }
  });

  it('exits 2 on a database URL it cannot use, naming only the scheme', async () => {
    for (const url of ['mysql://root:hunter2@db/x', 'postgres://u:hunter2@h:port/x']) {
      const result = await runInlet(['migrate', '--database', url]);
      expect(result.code, url).toBe(2);
      expect(result.stderr).toMatch(/--database/);
      expect(result.stderr).not.toContain('hunter2');
    }
  });
});

describe.skipIf(!probe.ok)('inlet migrate and the read commands on PostgreSQL', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    if (probe.ok) db = await createTestDatabase(probe.adminUrl, 'inlet_test_cli');
  });

  afterAll(async () => {
    await db?.drop();
  });

  it('migrates once, then has nothing to do', async () => {
    const url = await db.freshSchema();
    const first = await runInlet(['migrate', '--database', url]);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(first.stdout).toMatch(/^Applied migration 1 \(events_objects_rejections\)$/m);
    expect(first.stdout).toContain(db.name);
    const second = await runInlet(['migrate', '--database', url]);
    expect(second.stdout).toMatch(/^Nothing to migrate/m);
  });

  it('exits 1 naming the database when it does not exist, and creates nothing', async () => {
    const name = randomName('inlet_missing');
    const result = await runInlet(['migrate', '--database', urlOfDatabase(db.url, name)]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(name);
    expect(result.stderr).toMatch(/does not exist/);
    expect((await db.admin('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount).toBe(0);
  });

  it('lists and shows what serve stored, read-only', async () => {
    const url = await db.freshSchema();
    const store = await openStore(url, { mode: 'serve' });
    await store.commitEvents([
      makeEvent('msg_cli_1', { id: 'cli_pred', status: 'starting', model: 'acme/cli' }),
      makeEvent('msg_cli_2', { id: 'cli_pred', status: 'succeeded', model: 'acme/cli', output: ['o'] }),
    ]);
    await store.close();

    const list = await runInlet(['predictions', '--json', '--database', url]);
    expect(list.code).toBe(0);
    expect(JSON.parse(list.stdout).data).toMatchObject([
      { id: 'cli_pred', status: 'succeeded', event_count: 2 },
    ]);
    const show = await runInlet(['predictions', 'show', 'cli_pred', '--json', '--database', url]);
    expect(JSON.parse(show.stdout)).toMatchObject({ id: 'cli_pred', output: ['o'] });
  });

  it('read commands exit 2 saying where they looked when there is no Inlet database', async () => {
    const name = randomName('inlet_missing');
    const missing = await runInlet(['predictions', '--database', urlOfDatabase(db.url, name)]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(name);
    const empty = await runInlet(['predictions', '--database', await db.freshSchema()]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/not an Inlet database/);
  });
});
