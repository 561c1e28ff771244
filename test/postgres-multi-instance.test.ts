/**
 * Two real `inlet serve` processes on one fresh PostgreSQL database, as behind a load balancer.
 * Needs `npm run build` first (npm test does it).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  deliver,
  getJson,
  postgresOrSkip,
  signedDelivery,
  startServe,
  type Delivery,
  type ServeProcess,
  type TestDatabase,
} from './pg-helpers.js';

const probe = await postgresOrSkip('the multi-instance tests');

describe.skipIf(!probe.ok)('two inlet serve processes on one PostgreSQL', () => {
  let db: TestDatabase;
  let a: ServeProcess;
  let b: ServeProcess;
  const run = Math.random().toString(36).slice(2, 8);

  beforeAll(async () => {
    if (!probe.ok) return;
    db = await createTestDatabase(probe.adminUrl, 'inlet_test_multi');
    // Both start at once: the migrations' advisory lock keeps them apart.
    [a, b] = await Promise.all([startServe(db.url), startServe(db.url)]);
  });

  afterAll(async () => {
    const codes = await Promise.all([a?.stop(), b?.stop()]);
    await db?.drop();
    expect(codes).toEqual([0, 0]);
  });

  async function allPredictions(base: string): Promise<Record<string, unknown>[]> {
    const seen: Record<string, unknown>[] = [];
    let cursor: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const page = await getJson(
        `${base}/api/predictions?limit=37${cursor === null ? '' : `&cursor=${encodeURIComponent(cursor)}`}`,
      );
      expect(page.status).toBe(200);
      seen.push(...(page.json.data as Record<string, unknown>[]));
      cursor = page.json.next_cursor as string | null;
      if (cursor === null) return seen;
    }
    throw new Error('too many pages');
  }

  it('stores a delivery sent to both at once exactly once, with one duplicate: false', async () => {
    const deliveries = Array.from({ length: 40 }, (_, i) =>
      signedDelivery({ id: `same_${run}_${i}`, status: 'starting', model: 'acme/m', input: { i } }),
    );
    const answers = await Promise.all(
      deliveries.map((d) => Promise.all([deliver(a.webhookUrl, d), deliver(b.webhookUrl, d)])),
    );
    for (const [i, pair] of answers.entries()) {
      expect(pair.map((p) => p.status)).toEqual([200, 200]);
      expect(
        pair.filter((p) => p.json.duplicate === false),
        `delivery ${i}`,
      ).toHaveLength(1);
      expect(pair.filter((p) => p.json.duplicate === true)).toHaveLength(1);
    }
    for (const d of deliveries.slice(0, 10)) {
      const event = await getJson(`${a.base}/api/events/${d.key}`);
      expect(event.json).toMatchObject({ id: d.key, duplicates: 1 });
    }
    const counts = await db.query<{ events: string; objects: string }>(
      `SELECT (SELECT count(*) FROM events WHERE object_id LIKE $1) AS events,
              (SELECT count(*) FROM objects WHERE id LIKE $1) AS objects`,
      [`same_${run}_%`],
    );
    expect(counts.rows[0]).toEqual({ events: '40', objects: '40' });
  });

  it('shows deliveries spread over both instances through either one', async () => {
    const deliveries = Array.from({ length: 120 }, (_, i) =>
      signedDelivery({ id: `spread_${run}_${String(i).padStart(3, '0')}`, status: 'succeeded', output: [i] }),
    );
    const answers = await Promise.all(deliveries.map((d, i) => deliver((i % 2 === 0 ? a : b).webhookUrl, d)));
    expect(answers.every((r) => r.status === 200 && r.json.duplicate === false)).toBe(true);

    const expected = deliveries.map((d) => (JSON.parse(d.body) as { id: string }).id).sort();
    for (const server of [a, b]) {
      const ids = (await allPredictions(server.base))
        .map((p) => p.id as string)
        .filter((id) => id.startsWith(`spread_${run}_`));
      expect(ids.length).toBe(120);
      expect([...ids].sort()).toEqual(expected);
    }
  });

  it('folds out-of-order deliveries split across instances to the right terminal state', async () => {
    const predictions = 30;
    const now = Math.floor(Date.now() / 1000);
    const deliveries: { delivery: Delivery; id: string }[] = [];
    for (let p = 0; p < predictions; p++) {
      const id = `fold_${run}_${p}`;
      const base = { id, model: 'acme/painter', input: { p } };
      const push = (object: Record<string, unknown>, ts: number) =>
        deliveries.push({ id, delivery: signedDelivery({ ...base, ...object }, ts) });
      push({ status: 'starting', logs: '' }, now - 20);
      for (let n = 1; n <= 3; n++) push({ status: 'processing', logs: 'step\n'.repeat(n) }, now - 20 + n);
      const terminal = p % 3 === 0 ? 'failed' : 'succeeded';
      push(
        {
          status: terminal,
          logs: 'step\n'.repeat(3),
          output: terminal === 'succeeded' ? [`out-${p}`] : null,
        },
        now - 10,
      );
    }
    // Newest first: the worst order, then a shuffle on top, and every delivery to a random instance.
    const order = deliveries
      .map((d, i) => ({ d, key: -i + Math.random() * 8 }))
      .sort((x, y) => x.key - y.key)
      .map(({ d }) => d);
    const answers = await Promise.all(
      order.map(({ delivery }) => deliver((Math.random() < 0.5 ? a : b).webhookUrl, delivery)),
    );
    expect(answers.filter((r) => r.status !== 200)).toEqual([]);

    for (let p = 0; p < predictions; p++) {
      const id = `fold_${run}_${p}`;
      const { status, json } = await getJson(`${(p % 2 === 0 ? a : b).base}/api/predictions/${id}`);
      expect(status).toBe(200);
      const terminal = p % 3 === 0 ? 'failed' : 'succeeded';
      expect(json, id).toMatchObject({ id, status: terminal, event_count: 5, logs: 'step\n'.repeat(3) });
      expect(json.output).toEqual(terminal === 'succeeded' ? [`out-${p}`] : null);
    }
  });

  it('never loads the SQLite addon in a PostgreSQL deployment', () => {
    const script = `
      const { openStore } = await import(${JSON.stringify(new URL('../dist/store/index.js', import.meta.url).href)});
      const store = await openStore(${JSON.stringify(db.url)}, { mode: 'read' });
      await store.ping();
      await store.close();
      const loaded = process.report.getReport().sharedObjects.filter((s) => /sqlite/i.test(s));
      console.log(JSON.stringify(loaded));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout.trim())).toEqual([]);
  });
});
