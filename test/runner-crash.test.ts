/**
 * The runner in a process of its own (built code), killed and started again: SIGKILL between attempts
 * loses nothing and repeats no success; a dead message comes back with `inlet messages retry` from
 * another process. Both dialects.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { appendFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { tempDir } from './helpers.js';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from './pg-helpers.js';
import { runCli } from './process-helpers.js';

const CHILD = fileURLToPath(new URL('./fixtures/runner-process.mjs', import.meta.url));

interface Hit {
  id: string;
  status: number;
}

class Receiver {
  readonly hits: Hit[] = [];
  status = 200;
  #server: Server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      this.hits.push({ id: String(req.headers['webhook-id']), status: this.status });
      res.writeHead(this.status).end();
    });
  });
  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }
  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const probe = await postgresOrSkip('the runner crash tests on PostgreSQL');
let pgDatabase: Promise<TestDatabase> | undefined;
afterAll(async () => {
  if (pgDatabase !== undefined) await (await pgDatabase).drop();
});

const tmp = tempDir('inlet-crash-');
afterAll(() => tmp.cleanup());

const DIALECTS: [string, (() => Promise<string>) | undefined][] = [
  ['sqlite', async () => `sqlite:${join(tmp.dir, `crash-${Date.now()}-${Math.random()}.db`)}`],
  [
    'postgres',
    probe.ok
      ? async () => {
          pgDatabase ??= createTestDatabase(probe.adminUrl, 'inlet_test_crash');
          return (await pgDatabase).freshSchema();
        }
      : undefined,
  ],
];

for (const [dialect, makeUrl] of DIALECTS) {
  describe.skipIf(makeUrl === undefined)(`the runner process on ${dialect}`, () => {
    let receiver: Receiver;
    let receiverUrl: string;
    let databaseUrl: string;
    let logFile: string;
    let seq = 0;
    const children: ChildProcess[] = [];

    async function startRunner(delays: string): Promise<ChildProcess> {
      const child = spawn(process.execPath, [CHILD, databaseUrl, logFile, receiverUrl, delays], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      await new Promise<void>((resolve, reject) => {
        child.stdout.on('data', (d: Buffer) => {
          if (d.toString().includes('runner ready')) resolve();
        });
        child.on('exit', () => reject(new Error(`runner exited:\n${out}`)));
      });
      return child;
    }

    function kill(child: ChildProcess): Promise<void> {
      if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
      return new Promise((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }

    function append(objectId: string, type: string): string {
      seq++;
      const status = type.endsWith('completed') ? 'succeeded' : 'processing';
      const row = {
        seq,
        id: `tr_${seq}`,
        type,
        objectId,
        kind: 'prediction',
        model: 'acme/painter',
        status,
        eventKey: `evt_${seq}`,
        recordedAtMs: Date.now(),
        eventCount: 1,
        firstReceivedAtMs: Date.now(),
        lastReceivedAtMs: Date.now(),
        body: JSON.stringify({ id: objectId, status }),
      };
      appendFileSync(logFile, `${JSON.stringify(row)}\n`);
      return row.id;
    }

    beforeEach(async () => {
      receiver = new Receiver();
      receiverUrl = await receiver.listen();
      databaseUrl = await makeUrl!();
      logFile = join(tmp.dir, `log-${Date.now()}-${Math.random()}.jsonl`);
      writeFileSync(logFile, '');
      seq = 0;
    });

    afterEach(async () => {
      for (const child of children.splice(0)) await kill(child);
      await receiver.close();
    });

    async function message(id: string) {
      const store = await openStore(databaseUrl, { mode: 'read' });
      try {
        return await store.jobs.getMessage(id);
      } finally {
        await store.close();
      }
    }

    it('SIGKILL between attempts, restart: delivered, same id, no second success', async () => {
      receiver.status = 500;
      const first = await startRunner('1500');
      append('p1', 'prediction.completed');
      await until('the first attempt', () => receiver.hits.length === 1);
      const id = receiver.hits[0]!.id;
      await until('the failure recorded', async () => (await message(id))?.attempts === 1);
      await kill(first);
      receiver.status = 200;
      await startRunner('1500');
      await until('the delivery', async () => (await message(id))?.state === 'delivered');
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(receiver.hits).toEqual([
        { id, status: 500 },
        { id, status: 200 },
      ]);
      expect((await message(id))?.attemptLog.map((a) => a.status)).toEqual([500, 200]);
    });

    it('down for the whole schedule: dead; `inlet messages retry` delivers it once it is back', async () => {
      receiver.status = 503;
      await startRunner('100,100');
      append('p1', 'prediction.completed');
      await until('three attempts', () => receiver.hits.length === 3);
      const id = receiver.hits[0]!.id;
      await until('dead', async () => (await message(id))?.state === 'dead');
      receiver.status = 200;
      const retry = await runCli(
        ['messages', 'retry', id, '--database', databaseUrl],
        {},
        { timeoutMs: 20_000 },
      );
      expect(retry.code).toBe(0);
      await until('the delivery', async () => (await message(id))?.state === 'delivered');
      expect(receiver.hits.map((h) => h.id)).toEqual([id, id, id, id]);
      expect(receiver.hits.filter((h) => h.status === 200)).toHaveLength(1);
    });
  });
}
