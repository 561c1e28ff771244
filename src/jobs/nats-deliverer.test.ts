import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from 'nats';
import { parseBrokerUrl, type NatsTarget } from './broker-url.js';
import {
  answers,
  canStartBroker,
  inParallel,
  NATS_URL_BASE,
  PrivateBroker,
  testMessage,
} from './broker-test-helpers.js';
import { NatsDeliverer, streamNameFor } from './nats-deliverer.js';

function target(url: string): NatsTarget {
  const parsed = parseBrokerUrl(url);
  if (!parsed.ok || parsed.target.scheme !== 'nats') throw new Error(`bad url ${url}`);
  return parsed.target;
}

const base = new URL(NATS_URL_BASE);
const reachable = await answers(base.hostname, Number(base.port || 4222));
if (!reachable) console.warn(`NATS tests skipped: nothing answers at ${NATS_URL_BASE} (.ci/run starts it)`);

/** Every message in a stream, in order. */
async function readStream(nc: NatsConnection, stream: string): Promise<{ msgId: string; body: string }[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(stream);
  const seqs = Array.from({ length: info.state.messages }, (_, i) => info.state.first_seq + i);
  return inParallel(seqs, 20, async (seq) => {
    const m = await jsm.streams.getMessage(stream, { seq });
    return { msgId: m.header.get('Nats-Msg-Id'), body: m.string() };
  });
}

describe.skipIf(!reachable)('NatsDeliverer (the machine’s JetStream)', () => {
  const subject = `inlet-test.${randomBytes(4).toString('hex')}`;
  let nc: NatsConnection;
  const deliverer = new NatsDeliverer({
    name: 'nats',
    target: target(`${NATS_URL_BASE}/${subject}`),
    timeoutMs: 5000,
  });

  beforeAll(async () => {
    nc = await connect({ servers: `${base.hostname}:${base.port || 4222}` });
  });
  afterAll(async () => {
    await deliverer.close();
    const jsm = await nc.jetstreamManager();
    await jsm.streams.delete(streamNameFor(subject)).catch(() => {});
    await nc.close();
  });

  it('publishes 1,000 messages once each, creating the stream, and JetStream drops resent ids', async () => {
    const messages = Array.from({ length: 1000 }, (_, n) => testMessage(n, subject));
    const signal = () => new AbortController().signal;
    const results = await inParallel(messages, 50, (m) => deliverer.deliver(m, signal()));
    expect(results.filter((r) => r.outcome !== 'delivered')).toEqual([]);
    // The same messages again (a crash between the acknowledgement and its commit repeats them).
    const again = await inParallel(messages.slice(0, 300), 50, (m) => deliverer.deliver(m, signal()));
    expect(again.every((r) => r.outcome === 'delivered')).toBe(true);

    const stored = await readStream(nc, streamNameFor(subject));
    expect(stored).toHaveLength(1000);
    expect(new Set(stored.map((m) => m.msgId)).size).toBe(1000);
    const first = stored.find((m) => m.msgId === messages[7]!.id)!;
    expect(JSON.parse(first.body)).toEqual({
      type: 'prediction.completed',
      timestamp: '2026-12-03T12:00:00.007Z',
      data: messages[7]!.data,
    });
  });

  it('uses a stream that already captures the subject', async () => {
    const jsm = await nc.jetstreamManager();
    const own = `inlet-own.${randomBytes(4).toString('hex')}`;
    await jsm.streams.add({ name: `OWN_${randomBytes(4).toString('hex')}`, subjects: [`${own}.>`] });
    const d = new NatsDeliverer({
      name: 'own',
      target: target(`${NATS_URL_BASE}/${own}.x`),
      timeoutMs: 5000,
    });
    try {
      const result = await d.deliver(testMessage(1, own), new AbortController().signal);
      expect(result.outcome).toBe('delivered');
      const name = await jsm.streams.find(`${own}.x`);
      expect(name).toMatch(/^OWN_/);
      await jsm.streams.delete(name);
    } finally {
      await d.close();
    }
  });
});

describe.skipIf(!canStartBroker('nats'))('NatsDeliverer with the broker down', () => {
  let broker: PrivateBroker;
  beforeAll(async () => {
    broker = await PrivateBroker.create('nats');
  });
  afterAll(async () => {
    await broker.dispose();
  });

  it('retries while nothing answers, and delivers once the broker is back', async () => {
    const d = new NatsDeliverer({
      name: 'down',
      target: target(`nats://127.0.0.1:${broker.port}/inlet.down`),
      timeoutMs: 1000,
    });
    const signal = new AbortController().signal;
    try {
      const down = await d.deliver(testMessage(1, 'down'), signal);
      expect(down).toMatchObject({
        outcome: 'retry',
        error: expect.stringContaining(`127.0.0.1:${broker.port}`),
      });

      await broker.start();
      expect((await d.deliver(testMessage(1, 'down'), signal)).outcome).toBe('delivered');

      // Stopped while connected: attempts fail until it returns, then the client reconnects.
      await broker.stop();
      expect((await d.deliver(testMessage(2, 'down'), signal)).outcome).toBe('retry');
      await broker.start();
      let result = await d.deliver(testMessage(2, 'down'), signal);
      for (let i = 0; i < 20 && result.outcome !== 'delivered'; i++)
        result = await d.deliver(testMessage(2, 'down'), signal);
      expect(result.outcome).toBe('delivered');

      const nc = await connect({ servers: `127.0.0.1:${broker.port}` });
      const info = await (await nc.jetstreamManager()).streams.info(streamNameFor('inlet.down'));
      expect(info.state.messages).toBe(2);
      await nc.close();
    } finally {
      await d.close();
    }
  });

  it('an aborted attempt is a retry', async () => {
    const controller = new AbortController();
    controller.abort();
    const d = new NatsDeliverer({ name: 'x', target: target('nats://127.0.0.1:1/x'), timeoutMs: 1000 });
    expect((await d.deliver(testMessage(1, 'x'), controller.signal)).outcome).toBe('retry');
    await d.close();
  });
});
