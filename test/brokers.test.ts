/**
 * Broker destinations end to end (CONTRACT §13, issue #15): a real `inlet serve` publishes 1,000
 * transitions to the machine's JetStream and to a Redis stream and is SIGKILLed in the middle; after a
 * restart every message is in the JetStream stream exactly once (deduped on `Nats-Msg-Id`) and in the
 * Redis stream at least once. With private brokers stopped, messages wait and arrive once when they
 * are back.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type NatsConnection } from 'nats';
import { Redis } from 'ioredis';
import { afterAll, describe, it } from 'vitest';
import {
  answers,
  canStartBroker,
  inParallel,
  NATS_URL_BASE,
  PrivateBroker,
  REDIS_URL_BASE,
} from '../src/jobs/broker-test-helpers.js';
import { streamNameFor } from '../src/jobs/nats-deliverer.js';
import { openStore } from '../src/store/index.js';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { waitFor } from './pg-helpers.js';
import { type RunningServer, startServe, stop } from './process-helpers.js';

const natsBase = new URL(NATS_URL_BASE);
const redisBase = new URL(REDIS_URL_BASE);
const natsServer = { host: natsBase.hostname, port: Number(natsBase.port || 4222) };
const redisServer = { host: redisBase.hostname, port: Number(redisBase.port || 6379) };
const sharedUp =
  (await answers(natsServer.host, natsServer.port)) && (await answers(redisServer.host, redisServer.port));
if (!sharedUp)
  console.warn('broker end-to-end tests skipped: NATS or Redis does not answer (.ci/run starts them)');
const canStart = canStartBroker('nats') && canStartBroker('redis');

const tmp = tempDir('inlet-brokers-');
afterAll(() => tmp.cleanup());

interface BrokerDestination {
  name: string;
  url: string;
  [key: string]: unknown;
}

function writeConfig(destinations: BrokerDestination[]): string {
  const file = join(tmp.dir, `config-${randomBytes(4).toString('hex')}.json`);
  writeFileSync(file, JSON.stringify({ destinations }));
  return file;
}

function serve(database: string, config: string): Promise<RunningServer> {
  return startServe(['--database', database, '--config', config], { REPLICATE_WEBHOOK_SECRET: SECRET });
}

function completedPredictions(n: number): Record<string, unknown>[] {
  return Array.from({ length: n }, () => prediction({ status: 'succeeded', output: ['https://x/o.png'] }));
}

/**
 * Sends signed deliveries the way Replicate does: each one again until it is answered 200, to
 * whichever serve `target()` names at the time (so it carries on across a kill and a restart).
 */
async function feed(
  target: () => string | undefined,
  objects: readonly Record<string, unknown>[],
  width = 8,
): Promise<void> {
  const deadline = Date.now() + 55_000;
  await inParallel(objects, width, async (object) => {
    const body = JSON.stringify(object);
    const headers = signedHeaders(body);
    for (;;) {
      const base = target();
      if (base !== undefined) {
        try {
          const res = await fetch(`${base}/replicate-webhook`, { method: 'POST', body, headers });
          await res.arrayBuffer();
          if (res.status === 200) return;
        } catch {
          // serve is down: Replicate retries too
        }
      }
      if (Date.now() > deadline) throw new Error(`delivery of ${String(object.id)} never answered 200`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
}

interface DestinationRow {
  name: string;
  pending: number;
  dead: number;
  last_error: string | null;
}

async function destinations(base: string): Promise<Map<string, DestinationRow>> {
  const res = await fetch(`${base}/api/destinations`);
  const { data } = (await res.json()) as { data: DestinationRow[] };
  return new Map(data.map((d) => [d.name, d]));
}

/** The messages of one destination in the database and their states (read while serve is stopped). */
async function storedMessages(database: string, consumer: string): Promise<Map<string, string>> {
  const store = await openStore(`sqlite:${database}`, { mode: 'read' });
  try {
    const states = new Map<string, string>();
    let after: number | undefined;
    for (;;) {
      const page = await store.jobs.listMessages({
        consumer,
        limit: 500,
        ...(after === undefined ? {} : { after }),
      });
      for (const m of page.items) states.set(m.id, m.state);
      if (!page.hasMore) return states;
      after = page.items.at(-1)!.seq;
    }
  } finally {
    await store.close();
  }
}

/** Every message of a JetStream stream, in order: its `Nats-Msg-Id` and body. */
async function streamMessages(
  nc: NatsConnection,
  stream: string,
): Promise<{ msgId: string; body: string }[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream).catch(() => undefined);
  if (info === undefined || info.state.messages === 0) return [];
  const seqs = Array.from(
    { length: info.state.last_seq - info.state.first_seq + 1 },
    (_, i) => info.state.first_seq + i,
  );
  return inParallel(seqs, 32, async (seq) => {
    const m = await jsm.streams.getMessage(stream, { seq });
    return { msgId: m.header.get('Nats-Msg-Id'), body: m.string() };
  });
}

async function streamCount(nc: NatsConnection, stream: string): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream).catch(() => undefined);
  return info?.state.messages ?? 0;
}

/** Every entry of a Redis stream: its `id`, `type` and `body` fields. */
async function redisEntries(
  redis: Redis,
  key: string,
): Promise<{ id: string; type: string; body: string }[]> {
  const entries = await redis.xrange(key, '-', '+');
  return entries.map(([, fields]) => {
    const map = new Map<string, string>();
    for (let i = 0; i + 1 < fields.length; i += 2) map.set(fields[i]!, fields[i + 1]!);
    return { id: map.get('id') ?? '', type: map.get('type') ?? '', body: map.get('body') ?? '' };
  });
}

function repeated(ids: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const id of ids) (seen.has(id) ? twice : seen).add(id);
  return [...twice];
}

describe.concurrent('broker destinations from a real serve', () => {
  it.skipIf(!sharedUp)(
    '1,000 transitions reach JetStream exactly once and Redis at least once across a SIGKILL of serve',
    async ({ expect }) => {
      const tag = randomBytes(4).toString('hex');
      const subject = `inlet-e2e.${tag}`;
      const stream = streamNameFor(subject);
      const redisKey = `inlet-e2e:${tag}`;
      const database = join(tmp.dir, `kill-${tag}.db`);
      // timeoutMs 1000: a message in flight at the kill waits its lease (timeoutMs + 30 s), then goes again.
      const config = writeConfig([
        { name: 'js', url: `nats://${natsServer.host}:${natsServer.port}/${subject}`, timeoutMs: 1000 },
        { name: 'rs', url: `redis://${redisServer.host}:${redisServer.port}/${redisKey}`, timeoutMs: 1000 },
      ]);
      const nc = await connect({ servers: `${natsServer.host}:${natsServer.port}` });
      const redis = new Redis({ host: redisServer.host, port: redisServer.port, lazyConnect: true });
      let server = await serve(database, config);
      let up: string | undefined = server.base;
      const objects = completedPredictions(1000);
      const predictionIds = objects.map((o) => o.id as string);
      const fed = feed(() => up, objects);
      fed.catch(() => {});
      try {
        // Killed while both destinations are part way (and deliveries still come in).
        await waitFor(
          '300 messages in each broker',
          async () => (await streamCount(nc, stream)) >= 300 && (await redis.xlen(redisKey)) >= 300,
          30_000,
        );
        up = undefined;
        await stop(server, 'SIGKILL');
        const natsAtKill = (await streamMessages(nc, stream)).map((m) => m.msgId);
        const redisAtKill = (await redisEntries(redis, redisKey)).map((e) => e.id);
        expect(natsAtKill.length).toBeLessThan(1000);
        expect(redisAtKill.length).toBeLessThan(1000);
        // Published but not recorded as delivered: sent again after the restart.
        const natsStates = await storedMessages(database, 'js');
        const redisStates = await storedMessages(database, 'rs');
        const natsUnrecorded = natsAtKill.filter((id) => natsStates.get(id) !== 'delivered');
        const redisUnrecorded = redisAtKill.filter((id) => redisStates.get(id) !== 'delivered');
        console.info(
          `at the kill: JetStream ${natsAtKill.length} (${natsUnrecorded.length} not recorded), ` +
            `Redis ${redisAtKill.length} (${redisUnrecorded.length} not recorded)`,
        );

        server = await serve(database, config);
        up = server.base;
        await fed;
        await waitFor(
          'every message delivered',
          async () => {
            if ((await streamCount(nc, stream)) < 1000) return false;
            const rows = await destinations(server.base);
            return rows.get('js')?.pending === 0 && rows.get('rs')?.pending === 0;
          },
          50_000,
        );
        const rows = await destinations(server.base);
        expect(rows.get('js')).toMatchObject({ pending: 0, dead: 0 });
        expect(rows.get('rs')).toMatchObject({ pending: 0, dead: 0 });
        await stop(server);

        const natsIds = await storedMessages(database, 'js');
        const redisIds = await storedMessages(database, 'rs');
        expect(natsIds.size).toBe(1000);
        expect(redisIds.size).toBe(1000);
        expect([...natsIds.values()].every((s) => s === 'delivered')).toBe(true);
        expect([...redisIds.values()].every((s) => s === 'delivered')).toBe(true);

        // JetStream: exactly the 1,000 message ids, once each.
        const inStream = await streamMessages(nc, stream);
        expect(inStream).toHaveLength(1000);
        expect(new Set(inStream.map((m) => m.msgId))).toEqual(new Set(natsIds.keys()));
        const bodies = inStream.map((m) => JSON.parse(m.body) as { type: string; data: { id: string } });
        expect(bodies.every((b) => b.type === 'prediction.completed')).toBe(true);
        expect(new Set(bodies.map((b) => b.data.id))).toEqual(new Set(predictionIds));

        // Redis: every id; an id twice only when it was in flight at the kill (appended, not recorded).
        const entries = await redisEntries(redis, redisKey);
        expect(new Set(entries.map((e) => e.id))).toEqual(new Set(redisIds.keys()));
        const twice = repeated(entries.map((e) => e.id));
        expect(twice.sort()).toEqual([...redisUnrecorded].sort());
        expect(entries.length).toBe(1000 + twice.length);
        expect(new Set(entries.map((e) => (JSON.parse(e.body) as { data: { id: string } }).data.id))).toEqual(
          new Set(predictionIds),
        );
        console.info(`after the restart: JetStream 1000, Redis ${entries.length} (${twice.length} repeated)`);
      } finally {
        await stop(server, 'SIGKILL');
        await (await nc.jetstreamManager()).streams.delete(stream).catch(() => {});
        await nc.close();
        await redis.del(redisKey).catch(() => 0);
        redis.disconnect();
      }
    },
    // Most of it is the lease of the messages in flight at the kill (timeoutMs + 31 s).
    90_000,
  );

  it.skipIf(!canStart)(
    'with the brokers stopped, messages wait (pending) and arrive once each when they are back',
    async ({ expect }) => {
      const tag = randomBytes(4).toString('hex');
      const nats = await PrivateBroker.create('nats');
      const redisBroker = await PrivateBroker.create('redis');
      const subject = 'inlet.outage';
      const stream = streamNameFor(subject);
      const redisKey = 'inlet:outage';
      const database = join(tmp.dir, `outage-${tag}.db`);
      // Retries every ~250 ms for 15 s: the outage is shorter, so nothing dies.
      const schedule = { timeoutMs: 1000, retryDelaysMs: Array<number>(60).fill(250) };
      const config = writeConfig([
        { name: 'js', url: `nats://127.0.0.1:${nats.port}/${subject}`, ...schedule },
        { name: 'rs', url: `redis://127.0.0.1:${redisBroker.port}/${redisKey}`, ...schedule },
      ]);
      await nats.start();
      await redisBroker.start();
      const server = await serve(database, config);
      let nc: NatsConnection | undefined;
      const redis = new Redis({
        host: '127.0.0.1',
        port: redisBroker.port,
        lazyConnect: true,
        maxRetriesPerRequest: 1,
      });
      redis.on('error', () => {});
      try {
        // Connected first: both deliverers hold a connection when the brokers go away.
        nc = await connect({ servers: `127.0.0.1:${nats.port}` });
        await feed(() => server.base, completedPredictions(10));
        await waitFor(
          'the first 10',
          async () => (await streamCount(nc!, stream)) === 10 && (await redis.xlen(redisKey)) === 10,
        );
        await nc.close();
        redis.disconnect();
        await nats.stop();
        await redisBroker.stop();

        await feed(() => server.base, completedPredictions(200));
        await waitFor('200 pending messages that failed an attempt', async () => {
          const rows = await destinations(server.base);
          return [rows.get('js'), rows.get('rs')].every(
            (d) => d?.pending === 200 && d.last_error?.includes('127.0.0.1') === true,
          );
        });
        const failed = await fetch(`${server.base}/api/messages?destination=rs&state=pending&limit=200`);
        const pending = ((await failed.json()) as { data: { attempts: number }[] }).data;
        expect(pending).toHaveLength(200);
        expect(pending.some((m) => m.attempts > 0)).toBe(true);

        await nats.start();
        await redisBroker.start();
        await waitFor(
          'the 200 delivered',
          async () => {
            const rows = await destinations(server.base);
            return rows.get('js')?.pending === 0 && rows.get('rs')?.pending === 0;
          },
          30_000,
        );
        const rows = await destinations(server.base);
        expect(rows.get('js')).toMatchObject({ pending: 0, dead: 0 });
        expect(rows.get('rs')).toMatchObject({ pending: 0, dead: 0 });

        // JetStream kept the first 10 on disk; Redis (no persistence) restarted empty: only the 200.
        nc = await connect({ servers: `127.0.0.1:${nats.port}` });
        const inStream = await streamMessages(nc, stream);
        expect(inStream).toHaveLength(210);
        expect(repeated(inStream.map((m) => m.msgId))).toEqual([]);
        const redis2 = new Redis({ host: '127.0.0.1', port: redisBroker.port });
        try {
          const entries = await redisEntries(redis2, redisKey);
          expect(repeated(entries.map((e) => e.id))).toEqual([]);
          expect(entries).toHaveLength(200);
        } finally {
          redis2.disconnect();
        }
      } finally {
        await stop(server, 'SIGKILL');
        await nc?.close().catch(() => {});
        redis.disconnect();
        await nats.dispose();
        await redisBroker.dispose();
      }
    },
  );
});
