/**
 * Two `inlet serve` processes on one PostgreSQL with one destination (CONTRACT §8, §9): 500
 * predictions delivered to either instance, with duplicates and reordering. Every `completed` reaches
 * the receiver, no message id is attempted by both at once, and no prediction's status rank goes down.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { createTestDatabase, postgresOrSkip, waitFor } from './pg-helpers.js';
import { startServe, stop, type RunningServer } from './process-helpers.js';

const RANK: Record<string, number> = {
  'prediction.started': 0,
  'prediction.logs': 1,
  'prediction.output': 1,
  'prediction.completed': 2,
};
const N = 500;

const probe = await postgresOrSkip('two serve processes on one PostgreSQL');
const tmp = tempDir('inlet-multi-serve-');
afterAll(() => tmp.cleanup());

describe.skipIf(!probe.ok)('two serve processes on one PostgreSQL', () => {
  it('deliver every completed of 500 predictions: one attempt of an id at a time, ranks never go down', async () => {
    const db = await createTestDatabase(probe.ok ? probe.adminUrl : '', 'inlet_test_multiserve');
    const active = new Map<string, number>();
    let overlaps = 0;
    const ranks = new Map<string, number[]>();
    const completed = new Set<string>();
    const succeeded = new Set<string>();
    const receiver: Server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const id = String(req.headers['webhook-id']);
        if ((active.get(id) ?? 0) > 0) overlaps++;
        active.set(id, (active.get(id) ?? 0) + 1);
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          type: string;
          data: { id: string };
        };
        // Some first tries fail, so retries interleave with fresh messages on both instances.
        const fail = !succeeded.has(id) && Math.random() < 0.1;
        setTimeout(() => {
          active.set(id, (active.get(id) ?? 1) - 1);
          if (!fail) {
            succeeded.add(id);
            const seen = ranks.get(body.data.id) ?? [];
            seen.push(RANK[body.type] ?? -1);
            ranks.set(body.data.id, seen);
            if (body.type === 'prediction.completed') completed.add(body.data.id);
          }
          res.writeHead(fail ? 503 : 200).end();
        }, Math.random() * 3);
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const config = join(tmp.dir, 'inlet.config.json');
    writeFileSync(
      config,
      JSON.stringify({
        destinations: [
          {
            name: 'app',
            url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
            events: ['prediction.*'],
            allowPrivateNetwork: true,
            retryDelaysMs: Array.from({ length: 8 }, () => 50_000),
          },
        ],
      }),
    );
    const env = { REPLICATE_WEBHOOK_SECRET: SECRET, INLET_TIME_SCALE: '0.001' };
    const servers: RunningServer[] = [];
    try {
      for (let i = 0; i < 2; i++)
        servers.push(await startServe(['--database', db.url, '--config', config], env));

      // Each prediction's three webhooks, some reordered, some sent twice, each to either instance.
      const deliveries: { body: string; id: string }[] = [];
      for (let i = 0; i < N; i++) {
        const p = prediction();
        const steps = [
          { ...p, status: 'starting' },
          { ...p, status: 'processing', logs: 'step 1', output: ['a'] },
          { ...p, status: 'succeeded', logs: 'step 1', output: ['a', 'b'] },
        ].map((object, k) => ({ body: JSON.stringify(object), id: `msg_${String(p.id)}_${k}` }));
        if (i % 5 === 0) steps.reverse();
        if (i % 3 === 0) steps.push(steps[steps.length - 1]!);
        deliveries.push(...steps);
      }
      let next = 0;
      const send = async () => {
        while (next < deliveries.length) {
          const delivery = deliveries[next++]!;
          const server = servers[Math.floor(Math.random() * 2)]!;
          const res = await fetch(`${server.base}/replicate-webhook`, {
            method: 'POST',
            body: delivery.body,
            headers: signedHeaders(delivery.body, { id: delivery.id }),
          });
          expect(res.status).toBe(200);
          await res.arrayBuffer();
        }
      };
      await Promise.all(Array.from({ length: 16 }, send));

      await waitFor('every completed delivered', async () => completed.size === N, 120_000);
      await waitFor(
        'nothing pending',
        async () => {
          const res = await fetch(`${servers[0]!.base}/api/destinations`);
          const app = ((await res.json()) as { data: { name: string; pending: number }[] }).data[0]!;
          return app.pending === 0;
        },
        60_000,
      );
      expect(overlaps).toBe(0);
      expect(ranks.size).toBe(N);
      for (const seen of ranks.values()) {
        for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThanOrEqual(seen[i - 1]!);
        expect(seen.filter((r) => r === 2)).toHaveLength(1);
        expect(seen.at(-1)).toBe(2);
      }
    } finally {
      for (const server of servers) await stop(server);
      receiver.closeAllConnections();
      await new Promise((resolve) => receiver.close(resolve));
      await db.drop();
    }
  });
});
