/**
 * Two runner processes on one PostgreSQL, one destination, 500 predictions (started, output,
 * completed each): every message reaches the receiver, no id is attempted by both at once, and each
 * prediction's messages arrive in order (so no status rank goes down).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { tempDir } from './helpers.js';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from './pg-helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/runner-process.mjs', import.meta.url));
const RANK: Record<string, number> = {
  'prediction.started': 0,
  'prediction.output': 1,
  'prediction.completed': 2,
};

const probe = await postgresOrSkip('the two-runner test on PostgreSQL');
let pgDatabase: Promise<TestDatabase> | undefined;
const tmp = tempDir('inlet-multi-');
const children: ChildProcess[] = [];
afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (pgDatabase !== undefined) await (await pgDatabase).drop();
  tmp.cleanup();
});

describe.skipIf(!probe.ok)('two runner processes on one PostgreSQL', () => {
  it('deliver 1,500 messages of 500 predictions: each once at a time, in order per prediction', async () => {
    pgDatabase ??= createTestDatabase(probe.ok ? probe.adminUrl : '', 'inlet_test_multi');
    const databaseUrl = await (await pgDatabase).freshSchema();
    const logFile = join(tmp.dir, 'log.jsonl');
    writeFileSync(logFile, '');

    const active = new Map<string, number>();
    let overlaps = 0;
    const byPrediction = new Map<string, number[]>();
    const succeeded = new Set<string>();
    const server: Server = createServer((req, res) => {
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
        const ranks = byPrediction.get(body.data.id) ?? [];
        ranks.push(RANK[body.type] ?? -1);
        byPrediction.set(body.data.id, ranks);
        // Some first tries fail, so retries interleave with fresh messages on both instances.
        const fail = !succeeded.has(id) && Math.random() < 0.1;
        setTimeout(() => {
          active.set(id, (active.get(id) ?? 1) - 1);
          if (!fail) succeeded.add(id);
          res.writeHead(fail ? 503 : 200).end();
        }, Math.random() * 3);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const receiverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

    for (let i = 0; i < 2; i++) {
      const child = spawn(
        process.execPath,
        [CHILD, databaseUrl, logFile, receiverUrl, '50,50,50,50,50,50,50,50'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      children.push(child);
      await new Promise<void>((resolve) =>
        child.stdout.on('data', (d: Buffer) => d.toString().includes('runner ready') && resolve()),
      );
    }

    const N = 500;
    let seq = 0;
    const lines: string[] = [];
    for (let i = 0; i < N; i++) {
      for (const type of ['prediction.started', 'prediction.output', 'prediction.completed']) {
        seq++;
        const status = type === 'prediction.completed' ? 'succeeded' : 'processing';
        lines.push(
          JSON.stringify({
            seq,
            id: `tr_${seq}`,
            type,
            objectId: `p${i}`,
            kind: 'prediction',
            model: 'acme/painter',
            status,
            eventKey: `evt_${seq}`,
            recordedAtMs: Date.now(),
            eventCount: 1,
            firstReceivedAtMs: Date.now(),
            lastReceivedAtMs: Date.now(),
            body: JSON.stringify({ id: `p${i}`, status }),
          }),
        );
      }
      if (i % 50 === 49) appendFileSync(logFile, `${lines.splice(0).join('\n')}\n`);
    }

    const store = await openStore(databaseUrl, { mode: 'read' });
    try {
      const deadline = Date.now() + 90_000;
      for (;;) {
        const delivered = (
          await store.jobs.listMessages({ consumer: 'app', state: 'delivered', limit: 3 * N })
        ).items.length;
        if (delivered === 3 * N) break;
        if (Date.now() > deadline) throw new Error(`only ${delivered} of ${3 * N} delivered`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
      expect((await store.jobs.listMessages({ state: 'dead', limit: 10 })).items).toEqual([]);
    } finally {
      await store.close();
    }
    expect(overlaps).toBe(0);
    expect(byPrediction.size).toBe(N);
    for (const ranks of byPrediction.values()) {
      // Retries repeat a rank; it never goes down, and completed arrives (last).
      for (let i = 1; i < ranks.length; i++) expect(ranks[i]).toBeGreaterThanOrEqual(ranks[i - 1]!);
      expect(ranks.at(-1)).toBe(2);
    }
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
});
