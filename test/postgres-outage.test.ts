/**
 * PostgreSQL going away under a running `inlet serve` (a server not up yet at start, and a database that
 * does not exist, are in serve-start-failures.test.ts).
 * Needs `npm run build` first (npm test does it).
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestDatabase,
  deliver,
  postgresOrSkip,
  signedDelivery,
  startServe,
  waitFor,
  type Answer,
  type Delivery,
  type ServeProcess,
} from './pg-helpers.js';

const probe = await postgresOrSkip('the PostgreSQL outage tests');
const adminUrl = probe.ok ? probe.adminUrl : '';
const COMMIT_TIMEOUT_MS = 1000;
// The commit timeout, plus room for a loaded two-core machine to parse and answer.
const ANSWER_BOUND_MS = COMMIT_TIMEOUT_MS + 1500;

async function readyStatus(server: ServeProcess): Promise<number> {
  return (await fetch(`${server.base}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
}

describe.skipIf(!probe.ok)('PostgreSQL outages under inlet serve', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('answers 503 while the database is away, recovers by itself, and loses nothing it answered 200', async () => {
    const db = await createTestDatabase(adminUrl, 'inlet_test_outage');
    cleanups.push(() => db.drop());
    const server = await startServe(db.url, ['--commit-timeout-ms', String(COMMIT_TIMEOUT_MS)]);
    cleanups.push(() => server.stop());
    await waitFor('the store to connect', async () => (await readyStatus(server)) === 200);

    const sent: { n: number; delivery: Delivery; answer: Answer }[] = [];
    let sending = true;
    let counter = 0;
    // Four clients keep delivering fresh predictions until told to stop.
    const clients = [0, 1, 2, 3].map(async (client) => {
      while (sending) {
        const n = counter++;
        const delivery = signedDelivery({ id: `out_${client}_${n}`, status: 'starting', model: 'acme/m' });
        const answer = await deliver(server.webhookUrl, delivery);
        sent.push({ n, delivery, answer });
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    });
    try {
      await waitFor('some 200s', async () => sent.filter((s) => s.answer.status === 200).length >= 10);

      // Lock the database out and cut every connection Inlet holds.
      await db.admin(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS false`);
      await db.terminateConnections();
      const cutAt = counter;
      // Deliveries sent after the cut, not only those caught in flight, are refused.
      await waitFor(
        '503 answers',
        async () => sent.filter((s) => s.n > cutAt && s.answer.status === 503).length >= 4,
      );
      await waitFor('/readyz 503', async () => (await readyStatus(server)) === 503, 5000);
      const during = sent.filter((s) => s.answer.status === 503);
      for (const { answer } of during) {
        expect(answer.json).toMatchObject({ error: { code: 'storage_unavailable' } });
        expect(answer.ms).toBeLessThan(ANSWER_BOUND_MS);
      }

      await db.admin(`ALTER DATABASE ${db.name} ALLOW_CONNECTIONS true`);
      await waitFor('/readyz 200 again', async () => (await readyStatus(server)) === 200, 15_000);
      const recoveredAt = sent.length;
      await waitFor(
        '200s again',
        async () => sent.slice(recoveredAt).filter((s) => s.answer.status === 200).length >= 8,
      );
    } finally {
      sending = false;
      await Promise.all(clients);
    }

    // Nothing but 200 (stored) or 503 (not acknowledged: Replicate retries) was ever answered.
    expect(sent.filter((s) => s.answer.status !== 200 && s.answer.status !== 503)).toEqual([]);
    // No server restart happened: the same process answers.
    expect(server.child.exitCode).toBeNull();

    // Every delivery answered 200 is stored, once.
    const acknowledged = sent.filter((s) => s.answer.status === 200).map((s) => s.delivery.key);
    const stored = await db.query<{ delivery_key: string; duplicates: number }>(
      'SELECT delivery_key, duplicates FROM events WHERE delivery_key = ANY($1::text[])',
      [acknowledged],
    );
    expect(stored.rows.map((r) => r.delivery_key).sort()).toEqual([...acknowledged].sort());

    // Replicate retries what got 503: each is then stored exactly once as well.
    const refused = sent.filter((s) => s.answer.status === 503).map((s) => s.delivery);
    const retried = await Promise.all(refused.map((d) => deliver(server.webhookUrl, d)));
    expect(retried.map((r) => r.status)).toEqual(refused.map(() => 200));
    const all = await db.query<{ n: string }>('SELECT count(*) AS n FROM events');
    expect(Number(all.rows[0]!.n)).toBe(sent.length);
  });
});
