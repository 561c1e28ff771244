import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBrokerUrl, type RedisTarget } from './broker-url.js';
import {
  answers,
  canStartBroker,
  inParallel,
  PrivateBroker,
  REDIS_URL_BASE,
  testMessage,
} from './broker-test-helpers.js';
import { RedisDeliverer } from './redis-deliverer.js';

function target(url: string): RedisTarget {
  const parsed = parseBrokerUrl(url);
  if (!parsed.ok || parsed.target.scheme === 'nats') throw new Error(`bad url ${url}`);
  return parsed.target;
}

const base = new URL(REDIS_URL_BASE);
const reachable = await answers(base.hostname, Number(base.port || 6379));
if (!reachable) console.warn(`Redis tests skipped: nothing answers at ${REDIS_URL_BASE} (.ci/run starts it)`);

const signal = () => new AbortController().signal;

/** Attempts `n` until one is delivered, a little apart (the client reconnects in the background). */
async function deliverEventually(d: RedisDeliverer, n: number, prefix: string): Promise<string> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const result = await d.deliver(testMessage(n, prefix), signal());
    if (result.outcome === 'delivered' || Date.now() > deadline) return result.outcome;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe.skipIf(!reachable)('RedisDeliverer (the machine’s Redis)', () => {
  const stream = `inlet-test:${randomBytes(4).toString('hex')}`;
  const redis = new Redis({ host: base.hostname, port: Number(base.port || 6379), lazyConnect: true });
  const deliverer = new RedisDeliverer({
    name: 'redis',
    target: target(`${REDIS_URL_BASE}/${stream}`),
    timeoutMs: 5000,
  });

  afterAll(async () => {
    await deliverer.close();
    await redis.del(stream);
    await redis.quit();
  });

  it('appends 1,000 messages once each with the fields id, type and body', async () => {
    const messages = Array.from({ length: 1000 }, (_, n) => testMessage(n, 'redis'));
    const results = await inParallel(messages, 50, (m) => deliverer.deliver(m, signal()));
    expect(results.filter((r) => r.outcome !== 'delivered')).toEqual([]);

    const entries = await redis.xrange(stream, '-', '+');
    expect(entries).toHaveLength(1000);
    const fields = entries.map(([, values]) => {
      const record: Record<string, string> = {};
      for (let i = 0; i < values.length; i += 2) record[values[i]!] = values[i + 1]!;
      return record;
    });
    expect(new Set(fields.map((f) => f.id)).size).toBe(1000);
    const seventh = fields.find((f) => f.id === messages[7]!.id)!;
    expect(Object.keys(seventh)).toEqual(['id', 'type', 'body']);
    expect(seventh.type).toBe('prediction.completed');
    expect(JSON.parse(seventh.body!)).toEqual({
      type: 'prediction.completed',
      timestamp: '2026-12-03T12:00:00.007Z',
      data: messages[7]!.data,
    });
  });
});

describe.skipIf(!canStartBroker('redis'))('RedisDeliverer with the broker down', () => {
  let broker: PrivateBroker;
  beforeAll(async () => {
    broker = await PrivateBroker.create('redis');
  });
  afterAll(async () => {
    await broker.dispose();
  });

  it('retries while nothing answers, and delivers once the broker is back', async () => {
    const d = new RedisDeliverer({
      name: 'down',
      target: target(`redis://127.0.0.1:${broker.port}/down`),
      timeoutMs: 1000,
    });
    try {
      const down = await d.deliver(testMessage(1, 'down'), signal());
      expect(down).toMatchObject({
        outcome: 'retry',
        error: expect.stringContaining(`127.0.0.1:${broker.port}/down`),
      });

      await broker.start();
      expect(await deliverEventually(d, 1, 'down')).toBe('delivered');

      await broker.stop();
      expect((await d.deliver(testMessage(2, 'down'), signal())).outcome).toBe('retry');
      await broker.start();
      expect(await deliverEventually(d, 2, 'down')).toBe('delivered');

      const check = new Redis({ port: broker.port, host: '127.0.0.1' });
      // The second start is a fresh server without persistence: only the message sent after it is there.
      expect(await check.xlen('down')).toBe(1);
      await check.quit();
    } finally {
      await d.close();
    }
  });

  it('an attempt that failed while the broker was down never lands later (no repeat after its retry)', async () => {
    const d = new RedisDeliverer({
      name: 'late',
      target: target(`redis://127.0.0.1:${broker.port}/late`),
      timeoutMs: 1000,
    });
    const outcomes = new Map<string, string>();
    try {
      await broker.stop();
      await broker.start();
      expect(await deliverEventually(d, 0, 'late')).toBe('delivered');
      await broker.stop();
      // Ten attempts at a time, all through the outage and the return, until ten in a row succeed.
      let n = 1;
      let streak = 0;
      let restarted = false;
      const deadline = Date.now() + 20_000;
      while (streak < 10 && Date.now() < deadline) {
        const batch = Array.from({ length: 10 }, () => testMessage(n++, 'late'));
        const results = await Promise.all(batch.map((m) => d.deliver(m, signal())));
        results.forEach((r, i) => outcomes.set(batch[i]!.id, r.outcome));
        streak = results.every((r) => r.outcome === 'delivered') ? streak + 10 : 0;
        if (!restarted && n > 50) {
          await broker.start();
          restarted = true;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(streak).toBe(10);
      const failed = [...outcomes].filter(([, o]) => o !== 'delivered').map(([id]) => id);
      expect(failed.length).toBeGreaterThan(0);
      const check = new Redis({ port: broker.port, host: '127.0.0.1' });
      const landed = (await check.xrange('late', '-', '+')).map(([, fields]) => fields[1]!);
      await check.quit();
      expect(landed.filter((id) => failed.includes(id))).toEqual([]);
      expect(landed.sort()).toEqual(
        [...outcomes]
          .filter(([, o]) => o === 'delivered')
          .map(([id]) => id)
          .sort(),
      );
    } finally {
      await d.close();
    }
  });
});
