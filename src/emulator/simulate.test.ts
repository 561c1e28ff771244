import { describe, expect, it } from 'vitest';
import { FAKE_MODELS, findModel } from './models.js';
import { THROTTLE_MS, WEBHOOK_EVENTS, type WebhookEvent } from './prediction.js';
import { simulatePrediction, type ForcedStatus } from './simulate.js';

const FILTERS: WebhookEvent[][] = [
  [...WEBHOOK_EVENTS],
  ['start'],
  ['output'],
  ['logs'],
  ['completed'],
  ['output', 'completed'],
  ['logs', 'completed'],
];

function run(modelName: string, events: readonly WebhookEvent[], status?: ForcedStatus) {
  const model = findModel(modelName)!;
  return simulatePrediction({
    model,
    origin: 'http://127.0.0.1:5555',
    webhook: 'http://127.0.0.1:5000/replicate-webhook',
    events,
    endAtMs: 1_800_000_000_000,
    ...(status ? { status } : {}),
  });
}

describe('simulatePrediction (the lifecycle inlet trigger sends)', () => {
  for (const model of FAKE_MODELS) {
    for (const events of FILTERS) {
      it(`${model.name} with [${events.join(',')}] follows Replicate's rules`, () => {
        const { record, webhooks } = run(model.name, events);
        for (const w of webhooks) expect(events).toContain(w.event);
        expect(webhooks.filter((w) => w.event === 'start')).toHaveLength(events.includes('start') ? 1 : 0);
        if (events.includes('start')) expect(webhooks[0]!.event).toBe('start');
        const completed = webhooks.filter((w) => w.event === 'completed');
        expect(completed).toHaveLength(events.includes('completed') ? 1 : 0);
        if (events.includes('completed')) {
          expect(webhooks[webhooks.length - 1]!.event).toBe('completed');
          expect(JSON.parse(webhooks[webhooks.length - 1]!.body).status).toBe(record.status);
        }
        const intermediate = webhooks.filter((w) => w.event === 'output' || w.event === 'logs');
        for (let i = 1; i < intermediate.length; i++) {
          expect(intermediate[i]!.atMs - intermediate[i - 1]!.atMs).toBeGreaterThanOrEqual(THROTTLE_MS);
        }
        let previousLogs = '';
        for (const w of webhooks) {
          const body = JSON.parse(w.body);
          expect(body.logs.startsWith(previousLogs)).toBe(true);
          previousLogs = body.logs;
        }
        expect(record.status).toBe(model.name === 'inlet/fail' ? 'failed' : 'succeeded');
      });
    }
  }

  it('echo with every event: start, logs, output, completed', () => {
    const { webhooks } = run('inlet/echo', WEBHOOK_EVENTS);
    expect(webhooks.map((w) => w.event)).toEqual(['start', 'logs', 'output', 'completed']);
    expect(webhooks.map((w) => w.status)).toEqual(['processing', 'processing', 'processing', 'succeeded']);
  });

  it('forces a status: failed carries an error and a traceback, canceled stops early', () => {
    const failed = run('inlet/image', WEBHOOK_EVENTS, 'failed').record;
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatch(/forced/);
    expect(failed.logs).toMatch(/Traceback \(most recent call last\)/);
    const canceled = run('inlet/stream', WEBHOOK_EVENTS, 'canceled').record;
    expect(canceled.status).toBe('canceled');
    expect((canceled.output as string[]).length).toBeLessThan(12);
    expect(canceled.completedAtMs).toBe(1_800_000_000_000);
  });
});
