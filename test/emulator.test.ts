/* eslint-disable @typescript-eslint/no-explicit-any -- parsed JSON bodies, checked by expect() */
import { inflateSync } from 'node:zlib';
import { validateWebhook } from 'replicate';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createEmulator,
  FAKE_MODELS,
  type ReplicateEmulator,
  type WebhookEvent,
} from '../src/emulator/index.js';
import { decideFold, foldFactsOf, type FoldFacts } from '../src/replicate/fold.js';
import { verifyWebhook } from '../src/verify/index.js';
import { startReceiver, within, type Received } from './emulator-receiver.js';

const AUTH = { authorization: 'Bearer test-token', 'content-type': 'application/json' };

const FILTERS: (WebhookEvent[] | undefined)[] = [
  undefined,
  ['start', 'output', 'logs', 'completed'],
  ['start'],
  ['output'],
  ['logs'],
  ['completed'],
  ['start', 'completed'],
];

const INPUTS: Record<string, Record<string, unknown>> = {
  'inlet/echo': { text: 'hello emulator' },
  'inlet/image': { prompt: 'a red fox', n: 2 },
  'inlet/stream': { prompt: 'stream me' },
  'inlet/fail': { message: 'boom' },
  'inlet/slow': { seconds: 2 },
};

let cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  cleanups = [];
});

async function setup(
  options: Parameters<typeof createEmulator>[0],
  reply?: Parameters<typeof startReceiver>[0],
) {
  const emulator = createEmulator(options);
  const url = await emulator.listen(0);
  const receiver = await startReceiver(reply);
  cleanups.push(
    () => emulator.close(),
    () => receiver.close(),
  );
  return { emulator, url, receiver };
}

async function create(
  url: string,
  model: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {},
) {
  const res = await fetch(`${url}/models/${model}/predictions`, {
    method: 'POST',
    headers: { ...AUTH, ...headers },
    body: JSON.stringify(body),
  });
  const json = (await res.json()) as any;
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function getText(url: string): Promise<string> {
  const res = await fetch(url, { headers: AUTH });
  return res.text();
}

function eventsOf(list: readonly Received[], emulator: ReplicateEmulator): WebhookEvent[] {
  const byId = new Map(emulator.deliveries().map((d) => [d.webhookId, d.event]));
  return list.map((r) => byId.get(r.id)!);
}

async function checkSignatures(received: readonly Received[], secret: string): Promise<void> {
  const wh = new Webhook(secret);
  for (const r of received) {
    expect(() =>
      wh.verify(r.body, {
        'webhook-id': r.id,
        'webhook-timestamp': r.timestamp,
        'webhook-signature': r.signature,
      }),
    ).not.toThrow();
    await expect(
      validateWebhook({ id: r.id, timestamp: r.timestamp, signature: r.signature, body: r.body, secret }),
    ).resolves.toBe(true);
    const ours = verifyWebhook(Buffer.from(r.body), r.headers, { secrets: [secret], toleranceSec: 300 });
    expect(ours.ok).toBe(true);
  }
}

describe('webhooks for every fake model and events filter', () => {
  it('sends the right sequence, cumulative and throttled, signed, ending in the GET state', async () => {
    const { emulator, url, receiver } = await setup({ timeScale: 0.05 });
    const cases: { id: string; model: string; filter: WebhookEvent[] | undefined }[] = [];
    for (const model of FAKE_MODELS) {
      for (const filter of FILTERS) {
        const body: Record<string, unknown> = { input: INPUTS[model.name], webhook: receiver.url };
        if (filter) body.webhook_events_filter = filter;
        const prediction = await create(url, model.name, body);
        expect(prediction.status).toBe('starting');
        cases.push({ id: prediction.id, model: model.name, filter });
      }
    }
    await within(emulator.settled(), 15_000, 'all predictions and webhooks to finish');

    const deliveries = emulator.deliveries();
    expect(deliveries.every((d) => d.outcome === 'delivered' && d.attempt === 1)).toBe(true);
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(receiver.received.length);
    for (const r of receiver.received) expect(r.headers['content-type']).toBe('application/json');
    await checkSignatures(receiver.received, emulator.secret);

    for (const c of cases) {
      const filter = c.filter ?? ['output', 'completed'];
      const got = receiver.received.filter((r) => r.json.id === c.id);
      const events = eventsOf(got, emulator);
      const label = `${c.model} [${filter.join(',')}]: ${events.join(',')}`;
      for (const e of events) expect(filter, label).toContain(e);
      expect(
        events.filter((e) => e === 'start'),
        label,
      ).toHaveLength(filter.includes('start') ? 1 : 0);
      if (filter.includes('start')) expect(events[0], label).toBe('start');
      expect(
        events.filter((e) => e === 'completed'),
        label,
      ).toHaveLength(filter.includes('completed') ? 1 : 0);
      // the first intermediate change always passes the throttle; later ones may be dropped
      if (filter.includes('output') && !filter.includes('logs') && c.model !== 'inlet/fail') {
        expect(events.filter((e) => e === 'output').length, label).toBeGreaterThan(0);
      }
      if (filter.includes('logs'))
        expect(events.filter((e) => e === 'logs').length, label).toBeGreaterThan(0);

      // every body is the whole prediction, with cumulative output and logs
      for (let i = 1; i < got.length; i++) {
        const before = got[i - 1]!.json;
        const after = got[i]!.json;
        expect(after.logs.startsWith(before.logs), label).toBe(true);
        if (Array.isArray(before.output))
          expect(after.output.slice(0, before.output.length), label).toEqual(before.output);
      }
      for (const r of got) {
        expect(r.json.webhook).toBe(receiver.url);
        expect(r.json.webhook_events_filter).toEqual(filter);
      }

      const final = await getText(`${url}/predictions/${c.id}`);
      const object = JSON.parse(final);
      expect(object.status, label).toBe(c.model === 'inlet/fail' ? 'failed' : 'succeeded');
      if (filter.includes('completed')) {
        const last = got[got.length - 1]!;
        expect(last.body, label).toBe(final);
      } else {
        for (const r of got) expect(r.json.status).toBe('processing');
      }
    }

    // throttle: output/logs webhooks of one prediction at most once per 500 ms × 0.05
    for (const c of cases) {
      const times = emulator
        .deliveries()
        .filter((d) => d.predictionId === c.id && (d.event === 'output' || d.event === 'logs'))
        .map((d) => d.queuedAtMs);
      for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(23);
    }
  });

  it('gives each model its documented result', async () => {
    const { emulator, url, receiver } = await setup({ timeScale: 0.05 });
    const ids: Record<string, string> = {};
    for (const model of FAKE_MODELS) {
      ids[model.name] = (
        await create(url, model.name, { input: INPUTS[model.name], webhook: receiver.url })
      ).id;
    }
    await within(emulator.settled(), 10_000, 'predictions to finish');
    const get = async (name: string) => JSON.parse(await getText(`${url}/predictions/${ids[name]}`));

    const echo = await get('inlet/echo');
    expect(echo).toMatchObject({
      status: 'succeeded',
      output: 'hello emulator',
      error: null,
      data_removed: false,
    });
    expect(echo.metrics.predict_time).toBeGreaterThan(0);
    expect(echo.metrics.total_time).toBeGreaterThanOrEqual(echo.metrics.predict_time);

    const image = await get('inlet/image');
    expect(image.status).toBe('succeeded');
    expect(image.output).toHaveLength(2);
    for (const fileUrl of image.output as string[]) {
      const res = await fetch(fileUrl);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      const png = Buffer.from(await res.arrayBuffer());
      expect(png.subarray(1, 4).toString('ascii')).toBe('PNG');
      const idatLength = png.readUInt32BE(33);
      expect(png.toString('ascii', 37, 41)).toBe('IDAT');
      expect(inflateSync(png.subarray(41, 41 + idatLength)).length).toBe((32 * 3 + 1) * 32);
    }

    const stream = await get('inlet/stream');
    expect(stream.status).toBe('succeeded');
    expect(stream.output).toHaveLength(12);
    expect(stream.logs).toMatch(/generated 12 tokens/);

    const fail = await get('inlet/fail');
    expect(fail).toMatchObject({ status: 'failed', error: 'boom', output: null });
    expect(fail.logs).toMatch(/Traceback \(most recent call last\):[\s\S]*RuntimeError: boom/);

    const slow = await get('inlet/slow');
    expect(slow).toMatchObject({ status: 'succeeded', output: 'slept for 2 seconds' });
    expect(slow.logs).toBe('slept 1/2 s\nslept 2/2 s\n');
  });
});

describe('retries', () => {
  it('retries only the terminal webhook on 500, same id, new timestamps, until the retry window closes', async () => {
    // window = 60 s × 0.02 = 1.2 s; backoff 20, 40, 80, 160, 320 ms, then the window's end
    const { emulator, url, receiver } = await setup({ timeScale: 0.02, retryWindowMs: 60_000 }, () => ({
      status: 500,
    }));
    // start and the first log always pass the throttle: two intermediate webhooks
    const prediction = await create(url, 'inlet/echo', {
      input: { text: 'x' },
      webhook: receiver.url,
      webhook_events_filter: ['start', 'logs', 'completed'],
    });
    await within(emulator.settled(), 10_000, 'retries to end');
    const got = receiver.received.filter((r) => r.json.id === prediction.id);
    const terminal = got.filter((r) => r.json.status === 'succeeded');
    const intermediate = got.filter((r) => r.json.status !== 'succeeded');

    expect(intermediate.map((r) => r.json.logs === '')).toEqual([true, false]);
    expect(new Set(intermediate.map((r) => r.id)).size).toBe(intermediate.length);

    expect(terminal).toHaveLength(7);
    expect(new Set(terminal.map((r) => r.id)).size).toBe(1);
    expect(new Set(terminal.map((r) => r.body)).size).toBe(1);
    const stamps = terminal.map((r) => Number(r.timestamp));
    for (let i = 1; i < stamps.length; i++) expect(stamps[i]!).toBeGreaterThanOrEqual(stamps[i - 1]!);
    expect(stamps[stamps.length - 1]!).toBeGreaterThan(stamps[0]!);
    const span = terminal[terminal.length - 1]!.atMs - terminal[0]!.atMs;
    expect(span).toBeGreaterThanOrEqual(1150);
    expect(span).toBeLessThan(1800);
    await checkSignatures(terminal, emulator.secret);

    const attempts = emulator.deliveries().filter((d) => d.event === 'completed');
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(attempts.map((a) => a.willRetry)).toEqual([true, true, true, true, true, true, false]);
    const count = receiver.received.length;
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.received.length).toBe(count);
  });

  it('stops retrying once the receiver answers 2xx', async () => {
    let failures = 2;
    const { emulator, url, receiver } = await setup({ timeScale: 0.02 }, (r) =>
      r.json?.status === 'succeeded' && failures-- > 0 ? { status: 503 } : { status: 200 },
    );
    await create(url, 'inlet/echo', {
      input: { text: 'x' },
      webhook: receiver.url,
      webhook_events_filter: ['completed'],
    });
    await within(emulator.settled(), 10_000, 'delivery');
    expect(receiver.received.map((r) => r.json.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(emulator.deliveries().map((d) => d.responseStatus)).toEqual([503, 503, 200]);
  });

  it('never follows a redirect: a 301 is a failed attempt, not retried, and nothing reaches the Location', async () => {
    const target = await startReceiver();
    cleanups.push(() => target.close());
    const { emulator, url, receiver } = await setup({ timeScale: 0.02 }, () => ({
      status: 301,
      headers: { location: target.url },
    }));
    await create(url, 'inlet/echo', {
      input: { text: 'x' },
      webhook: receiver.url,
      webhook_events_filter: ['start', 'completed'],
    });
    await within(emulator.settled(), 10_000, 'deliveries');
    await new Promise((r) => setTimeout(r, 100));
    expect(target.received).toHaveLength(0);
    expect(receiver.received.map((r) => r.json.status)).toEqual(['processing', 'succeeded']);
    const completed = emulator.deliveries().filter((d) => d.event === 'completed');
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({ outcome: 'failed', responseStatus: 301, willRetry: false });
  });

  it('retries the terminal webhook on connection errors, and sends intermediate ones once', async () => {
    const closed = await startReceiver();
    await closed.close();
    const emulator = createEmulator({ timeScale: 0.01 });
    const url = await emulator.listen(0);
    cleanups.push(() => emulator.close());
    await create(url, 'inlet/echo', {
      input: { text: 'x' },
      webhook: closed.url,
      webhook_events_filter: ['start', 'logs', 'completed'],
    });
    await within(emulator.settled(), 10_000, 'retries to end');
    const attempts = emulator.deliveries();
    expect(attempts.filter((a) => a.event === 'start')).toHaveLength(1);
    expect(attempts.filter((a) => a.event === 'logs')).toHaveLength(1);
    const terminal = attempts.filter((a) => a.event === 'completed');
    expect(terminal.length).toBeGreaterThan(3);
    for (const a of attempts)
      expect(a).toMatchObject({ outcome: 'failed', responseStatus: null, error: 'ECONNREFUSED' });
  });
});

function fold(received: readonly Received[]): any {
  let facts: FoldFacts | undefined;
  let state: any;
  for (const r of received) {
    const next = foldFactsOf(r.json, Number(r.timestamp));
    if (decideFold(facts, next) === 'apply') {
      facts = next;
      state = r.json;
    }
  }
  return state;
}

describe('fault switches (seeded)', () => {
  it('duplicates, reorders and delays webhooks, and a receiver that folds still ends in the true state', async () => {
    const { emulator, url, receiver } = await setup({
      timeScale: 0.05,
      seed: 1234,
      faults: { duplicate: 0.3, reorder: 0.3, delay: 0.3, delayMs: 3000 },
    });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const p = await create(url, 'inlet/stream', {
        input: { prompt: `p${i}` },
        webhook: receiver.url,
        webhook_events_filter: ['start', 'output', 'logs', 'completed'],
      });
      ids.push(p.id);
    }
    await within(emulator.settled(), 15_000, 'deliveries');
    const deliveries = emulator.deliveries();
    const queuedAt = new Map(deliveries.map((d) => [d.webhookId, d.queuedAtMs]));

    // duplicates: the same webhook-id arrives twice
    const seen = new Map<string, number>();
    for (const r of receiver.received) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
    const duplicated = [...seen.values()].filter((n) => n > 1).length;
    expect(duplicated).toBeGreaterThan(0);
    expect(duplicated).toBe(deliveries.filter((d) => d.duplicate && d.outcome === 'delivered').length);

    // reorders: a message arrives after one that was queued later
    let overtaken = 0;
    for (const id of ids) {
      let latest = -Infinity;
      for (const r of receiver.received.filter((x) => x.json.id === id)) {
        const q = queuedAt.get(r.id)!;
        if (q < latest) overtaken += 1;
        latest = Math.max(latest, q);
      }
    }
    expect(overtaken).toBeGreaterThan(0);
    expect(deliveries.some((d) => d.faults.includes('reorder'))).toBe(true);

    // delays: sent at least the delay (3000 ms × 0.05) after it was queued
    const delayed = deliveries.filter((d) => d.faults.includes('delay') && d.attempt === 1 && !d.duplicate);
    expect(delayed.length).toBeGreaterThan(0);
    for (const d of delayed) expect(d.sentAtMs - d.queuedAtMs).toBeGreaterThanOrEqual(148);

    for (const id of ids) {
      const got = receiver.received.filter((r) => r.json.id === id);
      expect(got.some((r) => r.json.status === 'succeeded')).toBe(true);
      expect(fold(got)).toEqual(JSON.parse(await getText(`${url}/predictions/${id}`)));
    }
    await checkSignatures(receiver.received, emulator.secret);
  });

  it('the same seed makes the same fault decisions', async () => {
    const decisions = async () => {
      const { emulator, url, receiver } = await setup({
        timeScale: 0.02,
        seed: 99,
        faults: { duplicate: 0.5, delay: 0.5, delayMs: 100 },
      });
      // echo with these events always makes exactly three webhooks (start, its one log line, completed)
      for (let i = 0; i < 4; i++) {
        await create(url, 'inlet/echo', {
          input: { text: `${i}` },
          webhook: receiver.url,
          webhook_events_filter: ['start', 'logs', 'completed'],
        });
        await within(emulator.settled(), 10_000, 'deliveries');
      }
      return emulator
        .deliveries()
        .filter((d) => !d.duplicate)
        .map((d) => `${d.event}:${d.faults.join('+')}`);
    };
    const first = await decisions();
    expect(first).toHaveLength(12);
    expect(first.some((d) => d.includes('duplicate'))).toBe(true);
    expect(first.some((d) => d.includes('delay'))).toBe(true);
    expect(await decisions()).toEqual(first);
  });

  it('drop loses webhooks for good, the terminal one too (the API still has the truth)', async () => {
    const { emulator, url, receiver } = await setup({ timeScale: 0.02, faults: { drop: 1 } });
    const p = await create(url, 'inlet/echo', {
      input: { text: 'x' },
      webhook: receiver.url,
      webhook_events_filter: ['start', 'logs', 'completed'],
    });
    await within(emulator.settled(), 10_000, 'run');
    await new Promise((r) => setTimeout(r, 50));
    expect(receiver.received).toHaveLength(0);
    const deliveries = emulator.deliveries();
    expect(deliveries.map((d) => d.event)).toEqual(['start', 'logs', 'completed']);
    expect(deliveries.every((d) => d.outcome === 'dropped' && d.attempt === 0)).toBe(true);
    expect(JSON.parse(await getText(`${url}/predictions/${p.id}`)).status).toBe('succeeded');
  });
});

describe('logger', () => {
  it('logs each attempt with its webhook id, prediction, status and response code', async () => {
    const lines: { fields: any; message: string }[] = [];
    const log = (fields: object, message: string) => lines.push({ fields, message });
    const { emulator, url, receiver } = await setup({ timeScale: 0.02, logger: { info: log, warn: log } });
    const p = await create(url, 'inlet/echo', { input: { text: 'x' }, webhook: receiver.url });
    await within(emulator.settled(), 10_000, 'run');
    const delivered = lines.filter((l) => l.message === 'webhook delivered');
    expect(delivered.map((l) => l.fields.event)).toEqual(['output', 'completed']);
    for (const l of delivered) {
      expect(l.fields).toMatchObject({ predictionId: p.id, responseStatus: 200, attempt: 1 });
      expect(l.fields.webhookId).toMatch(/^msg_/);
    }
    expect(JSON.stringify(lines)).not.toContain(emulator.secret);
  });
});
