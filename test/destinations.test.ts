/**
 * The runner with the real HTTP deliverer against real receivers on loopback, on both dialects: retries
 * with one webhook-id, signatures Standard Webhooks verifies, dead letters, 410, several runners
 * sharing one PostgreSQL.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DestinationSchema } from '../src/jobs/destination-config.js';
import { FakeTransitionLog } from '../src/jobs/fakes.test-suite.js';
import { JobService } from '../src/jobs/job-service.js';
import { openPostgresStore } from '../src/store/postgres/postgres-store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import type { Store } from '../src/store/types.js';
import { DIALECT_CAPABILITIES } from '../src/store/dialects.js';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from './pg-helpers.js';

const DEST_SECRET = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

interface Received {
  id: string;
  body: Record<string, unknown>;
  verified: boolean;
  startedAt: number;
  endedAt: number;
}

/** A receiver whose answer each request is decided by `answer` (status, or 'hang'). */
class Receiver {
  readonly received: Received[] = [];
  answer: (r: Received, n: number) => number | Promise<number> = () => 200;
  readonly #server: Server;
  readonly #verifier = new Webhook(DEST_SECRET);
  #listeners: (() => void)[] = [];
  active = new Map<string, number>();
  overlaps = 0;

  constructor() {
    this.#server = createServer((req, res) => void this.#handle(req, res));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
    let verified = true;
    try {
      this.#verifier.verify(text, headers);
    } catch {
      verified = false;
    }
    const id = headers['webhook-id'] ?? '';
    if ((this.active.get(id) ?? 0) > 0) this.overlaps++;
    this.active.set(id, (this.active.get(id) ?? 0) + 1);
    const r: Received = {
      id,
      body: JSON.parse(text) as Record<string, unknown>,
      verified,
      startedAt: Date.now(),
      endedAt: 0,
    };
    this.received.push(r);
    try {
      const status = await this.answer(r, this.received.length);
      res.writeHead(status, status === 429 ? { 'retry-after': '1' } : {}).end('ok');
    } finally {
      r.endedAt = Date.now();
      this.active.set(id, (this.active.get(id) ?? 1) - 1);
      for (const l of this.#listeners.splice(0)) l();
    }
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook`;
  }

  async until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > deadline) throw new Error(`timed out; received ${this.received.length}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.#listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

const probe = await postgresOrSkip('the destination tests on PostgreSQL');
let pgDatabase: Promise<TestDatabase> | undefined;
afterAll(async () => {
  if (pgDatabase !== undefined) await (await pgDatabase).drop();
});

type Opener = () => Promise<{ open(): Promise<Store>; cleanup(): Promise<void> }>;

const DIALECTS: [keyof typeof DIALECT_CAPABILITIES, Opener | undefined][] = [
  [
    'sqlite',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'inlet-dest-'));
      return {
        open: () => openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' }),
        cleanup: () => rm(dir, { recursive: true, force: true }),
      };
    },
  ],
  [
    'postgres',
    probe.ok
      ? async () => {
          pgDatabase ??= createTestDatabase(probe.adminUrl, 'inlet_test_dest');
          const url = await (await pgDatabase).freshSchema();
          return {
            open: () => openPostgresStore(url, { mode: 'serve', poolSize: 6 }),
            cleanup: async () => {},
          };
        }
      : undefined,
  ],
];

for (const [dialect, opener] of DIALECTS) {
  describe.skipIf(opener === undefined)(`HTTP destinations on ${dialect}`, () => {
    let receiver: Receiver;
    let url: string;
    let log: FakeTransitionLog;
    let fixture: Awaited<ReturnType<Opener>>;
    const stores: Store[] = [];
    const services: JobService[] = [];

    async function service(
      destination: Record<string, unknown> = {},
      over: { timeScale?: number } = {},
    ): Promise<{ service: JobService; store: Store }> {
      const store = await fixture.open();
      stores.push(store);
      const config = DestinationSchema.parse({
        name: 'app',
        url,
        secret: DEST_SECRET,
        events: ['prediction.*'],
        allowPrivateNetwork: true,
        retryDelaysMs: [1000, 1000, 1000, 1000],
        ...destination,
      });
      const s = new JobService({
        jobs: store.jobs,
        log,
        destinations: [config],
        timeScale: over.timeScale ?? 0.01,
        pollIntervalMs: 20,
      });
      services.push(s);
      await s.start();
      return { service: s, store };
    }

    beforeEach(async () => {
      receiver = new Receiver();
      url = await receiver.listen();
      log = new FakeTransitionLog();
      fixture = await opener!();
    });

    afterEach(async () => {
      for (const s of services.splice(0)) await s.stop();
      for (const s of stores.splice(0)) await s.close();
      await receiver.close();
      await fixture.cleanup();
    });

    it('a receiver failing 3 times then 200: delivered once, 4 attempts, one webhook-id, verified', async () => {
      receiver.answer = (_r, n) => (n <= 3 ? 500 : 200);
      const { service: s, store } = await service();
      log.append('p1', 'prediction.completed');
      s.runner.wake();
      await receiver.until(() => receiver.received.length === 4);
      const ids = new Set(receiver.received.map((r) => r.id));
      expect(ids.size).toBe(1);
      expect(receiver.received.every((r) => r.verified)).toBe(true);
      const [id] = [...ids];
      expect(receiver.received[0]?.body).toMatchObject({
        type: 'prediction.completed',
        data: { id: 'p1', status: 'succeeded' },
      });
      await until(async () => (await store.jobs.getMessage(id!))?.state === 'delivered');
      const message = await store.jobs.getMessage(id!);
      expect(message?.attemptLog.map((a) => a.status)).toEqual([500, 500, 500, 200]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(receiver.received).toHaveLength(4);
    });

    it('down for the whole schedule: dead; a retry delivers it once the receiver is back', async () => {
      receiver.answer = () => 503;
      const { service: s, store } = await service({ retryDelaysMs: [100, 100] });
      log.append('p1', 'prediction.completed');
      s.runner.wake();
      await receiver.until(() => receiver.received.length === 3);
      const id = receiver.received[0]!.id;
      await until(async () => (await store.jobs.getMessage(id))?.state === 'dead');
      receiver.answer = () => 200;
      expect(await store.jobs.retryMessage(id, Date.now())).toBe('retried');
      s.runner.wake();
      await receiver.until(() => receiver.received.length === 4);
      await until(async () => (await store.jobs.getMessage(id))?.state === 'delivered');
      expect(receiver.received.map((r) => r.id)).toEqual([id, id, id, id]);
    });

    it('410 disables: later transitions wait; enable delivers them in order', async () => {
      receiver.answer = () => 410;
      const { service: s, store } = await service();
      log.append('p1', 'prediction.started');
      s.runner.wake();
      await receiver.until(() => receiver.received.length === 1);
      await until(async () => (await store.jobs.getConsumer('app'))?.enabled === false);
      log.append('p1', 'prediction.output');
      log.append('p1', 'prediction.completed');
      s.runner.wake();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(receiver.received).toHaveLength(1);
      receiver.answer = () => 200;
      await store.jobs.setConsumerEnabled('app', { enabled: true, nowMs: Date.now() });
      s.runner.wake();
      await receiver.until(() => receiver.received.length === 4);
      expect(receiver.received.map((r) => r.body.type)).toEqual([
        'prediction.started',
        'prediction.started',
        'prediction.output',
        'prediction.completed',
      ]);
    });

    if (DIALECT_CAPABILITIES[dialect].multiInstance) {
      it('two runners on one database: every message once at a time, in order per prediction', async () => {
        const attempted = new Set<string>();
        receiver.answer = async (r) => {
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 5));
          // Some first attempts fail so retries interleave with fresh messages. Only first attempts: a
          // message failing all seven (0.2^7 each, once in ≈ 500 runs of 150) would be dead, never
          // delivered, and the wait below would time out on a runner doing what it should.
          const first = !attempted.has(r.id);
          attempted.add(r.id);
          return first && r.body.type === 'prediction.started' && Math.random() < 0.2 ? 500 : 200;
        };
        const a = await service({ maxInFlight: 8, retryDelaysMs: [50, 50, 50, 50, 50, 50] });
        const b = await service({ maxInFlight: 8, retryDelaysMs: [50, 50, 50, 50, 50, 50] });
        const N = 150;
        for (let i = 0; i < N; i++) {
          log.append(`p${i}`, 'prediction.started');
          log.append(`p${i}`, 'prediction.output');
          log.append(`p${i}`, 'prediction.completed');
          if (i % 10 === 0) {
            a.service.runner.wake();
            b.service.runner.wake();
          }
        }
        a.service.runner.wake();
        b.service.runner.wake();
        await until(
          async () =>
            (await a.store.jobs.listMessages({ consumer: 'app', state: 'delivered', limit: 3 * N })).items
              .length ===
            3 * N,
          60_000,
        );
        const delivered = new Map<string, string[]>();
        for (const r of receiver.received) {
          const data = r.body.data as { id: string };
          const list = delivered.get(data.id) ?? [];
          list.push(String(r.body.type));
          delivered.set(data.id, list);
        }
        expect(delivered.size).toBe(N);
        for (const types of delivered.values()) {
          const firstOk = (t: string) => types.lastIndexOf(t);
          // In order: nothing of a later transition before the last attempt of an earlier one.
          expect(firstOk('prediction.started')).toBeLessThan(types.indexOf('prediction.output'));
          expect(types.indexOf('prediction.output')).toBeLessThan(types.indexOf('prediction.completed'));
          expect(types.filter((t) => t === 'prediction.completed')).toHaveLength(1);
        }
        expect(receiver.overlaps).toBe(0);
      });
    }
  });
}

async function until(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
