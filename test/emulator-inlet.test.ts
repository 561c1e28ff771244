import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmulator, type ReplicateEmulator, type WebhookEvent } from '../src/emulator/index.js';
import { newWebhookSecret } from '../src/emulator/random.js';
import { versionIdOf } from '../src/emulator/index.js';
import { createTestInlet, type TestInlet } from './helpers.js';

/** End to end, in one process on loopback: the emulator's real, signed webhooks into a real Inlet. */

const AUTH = { authorization: 'Bearer test-token', 'content-type': 'application/json' };
const MODELS: Record<string, Record<string, unknown>> = {
  'inlet/echo': { text: 'hello inlet' },
  'inlet/image': { prompt: 'a red fox', n: 2 },
  'inlet/stream': { prompt: 'stream me' },
  'inlet/fail': { message: 'boom' },
  'inlet/slow': { seconds: 2 },
};
/** Every filter that lets the final state reach the receiver (the default sends `completed` too). */
const FINAL_FILTERS: (WebhookEvent[] | undefined)[] = [
  undefined,
  ['completed'],
  ['start', 'completed'],
  ['output', 'completed'],
  ['logs', 'completed'],
  ['start', 'output', 'logs', 'completed'],
];
/** Filters without `completed`: Inlet shows the last state that was sent. */
const PARTIAL_FILTERS: WebhookEvent[][] = [['start'], ['output'], ['logs'], ['start', 'output', 'logs']];
const COMPARED = ['status', 'output', 'logs', 'error', 'metrics', 'completed_at', 'started_at'] as const;

async function startPair(options: Omit<Parameters<typeof createEmulator>[0] & object, 'secret'> = {}) {
  const secret = newWebhookSecret();
  const inlet = await createTestInlet({ REPLICATE_WEBHOOK_SECRET: secret });
  const address = await inlet.app.listen({ port: 0, host: '127.0.0.1' });
  const emulator = createEmulator({ secret, timeScale: 0.05, retryWindowMs: 2000, ...options });
  const api = await emulator.listen(0);
  return { inlet, emulator, api, webhook: `${address}/replicate-webhook` };
}

async function create(api: string, model: string, body: Record<string, unknown>): Promise<{ id: string }> {
  const res = await fetch(`${api}/models/${model}/predictions`, {
    method: 'POST',
    headers: AUTH,
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string };
}

async function finalOf(api: string, id: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${api}/predictions/${id}`, { headers: AUTH })).json()) as Record<
    string,
    unknown
  >;
}

async function inletOf(inlet: TestInlet, id: string): Promise<Record<string, unknown>> {
  const res = await inlet.app.inject({ url: `/api/predictions/${id}` });
  expect(res.statusCode, `Inlet has ${id}`).toBe(200);
  return res.json();
}

describe('emulate + serve', () => {
  let pair: Awaited<ReturnType<typeof startPair>>;
  beforeAll(async () => {
    pair = await startPair();
  });
  afterAll(async () => {
    await pair.emulator.close();
    await pair.inlet.close();
  });

  it('folds every model × every filter with `completed` to the emulator’s final GET', async () => {
    const cases: { id: string; label: string }[] = [];
    for (const [model, input] of Object.entries(MODELS)) {
      for (const filter of FINAL_FILTERS) {
        const body = { input, webhook: pair.webhook, ...(filter ? { webhook_events_filter: filter } : {}) };
        const { id } = await create(pair.api, model, body);
        cases.push({ id, label: `${model} ${filter?.join(',') ?? '(default)'}` });
      }
    }
    await pair.emulator.settled();
    for (const { id, label } of cases) {
      const final = await finalOf(pair.api, id);
      const folded = await inletOf(pair.inlet, id);
      for (const field of COMPARED) expect(folded[field], `${label}: ${field}`).toEqual(final[field]);
      expect(['succeeded', 'failed']).toContain(folded.status);
    }
  });

  it('without `completed`, shows the last state Replicate sent (final state needs polling)', async () => {
    for (const filter of PARTIAL_FILTERS) {
      const { id } = await create(pair.api, 'inlet/stream', {
        input: MODELS['inlet/stream'],
        webhook: pair.webhook,
        webhook_events_filter: filter,
      });
      await pair.emulator.settled();
      const sent = pair.emulator
        .deliveries()
        .filter((d) => d.predictionId === id && d.responseStatus === 200);
      const folded = await inletOf(pair.inlet, id);
      expect(folded.event_count, filter.join(',')).toBe(new Set(sent.map((d) => d.webhookId)).size);
      expect(folded.status).not.toBe('succeeded');
    }
  });

  it('records trainings as trainings', async () => {
    const model = await fetch(`${pair.api}/models`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({ owner: 'acme', name: 'tuned' }),
    });
    expect(model.status).toBe(201);
    const res = await fetch(`${pair.api}/models/inlet/echo/versions/${versionIdOf('inlet/echo')}/trainings`, {
      method: 'POST',
      headers: AUTH,
      body: JSON.stringify({ destination: 'acme/tuned', input: { text: 'x' }, webhook: pair.webhook }),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    await pair.emulator.settled();
    const folded = await inletOf(pair.inlet, id);
    expect(folded.kind).toBe('training');
  });
});

describe('emulate + serve with faults', () => {
  let emulator: ReplicateEmulator;
  it('ends every prediction in its true terminal state despite duplicates, reordering and delays', async () => {
    const pair = await startPair({
      faults: { duplicate: 0.3, reorder: 0.3, delay: 0.2, delayMs: 300 },
      seed: 42,
    });
    emulator = pair.emulator;
    try {
      const ids: string[] = [];
      for (let round = 0; round < 3; round++) {
        for (const [model, input] of Object.entries(MODELS)) {
          ids.push(
            (
              await create(pair.api, model, {
                input,
                webhook: pair.webhook,
                webhook_events_filter: ['start', 'output', 'logs', 'completed'],
              })
            ).id,
          );
        }
      }
      await emulator.settled();
      const attempts = emulator.deliveries();
      const perWebhook = new Map<string, number>();
      attempts.forEach((d) => perWebhook.set(d.webhookId, (perWebhook.get(d.webhookId) ?? 0) + 1));
      expect(
        [...perWebhook.values()].some((n) => n > 1),
        'some webhooks were duplicated',
      ).toBe(true);
      for (const id of ids) {
        const final = await finalOf(pair.api, id);
        const folded = await inletOf(pair.inlet, id);
        for (const field of COMPARED) expect(folded[field], `${id}: ${field}`).toEqual(final[field]);
      }
    } finally {
      await pair.emulator.close();
      await pair.inlet.close();
    }
  });
});
