import { describe, expect, it } from 'vitest';
import { applyStep, formatTime, toPublicObject, WebhookGate, type PredictionRecord } from './prediction.js';
import { createPrng, newPredictionId, newWebhookSecret } from './random.js';

function record(): PredictionRecord {
  return {
    id: 'abc',
    kind: 'prediction',
    seq: 1,
    model: 'inlet/echo',
    version: 'v',
    input: { text: 'hi' },
    output: null,
    logs: '',
    error: null,
    status: 'starting',
    createdAtMs: 1_000,
    startedAtMs: null,
    completedAtMs: null,
    webhook: 'http://127.0.0.1:1/hook',
    webhookEventsFilter: ['completed'],
    deadlineMs: null,
    deployment: undefined,
    streams: false,
    dataRemoved: false,
  };
}

describe('WebhookGate', () => {
  it('sends start once and the terminal webhook whatever the throttle', () => {
    const gate = new WebhookGate(['start', 'output', 'logs', 'completed'], 500);
    expect(gate.select(['start'], 0)).toBe('start');
    expect(gate.select(['output'], 10)).toBe('output');
    expect(gate.select(['completed'], 11)).toBe('completed');
  });

  it('throttles output and logs together to one per interval, dropping the rest', () => {
    const gate = new WebhookGate(['output', 'logs'], 500);
    expect(gate.select(['logs'], 0)).toBe('logs');
    expect(gate.select(['output'], 499)).toBeUndefined();
    expect(gate.select(['logs'], 500)).toBe('logs');
    expect(gate.select(['output'], 700)).toBeUndefined();
    expect(gate.select(['output'], 1000)).toBe('output');
  });

  it('honours the filter', () => {
    const gate = new WebhookGate(['logs'], 500);
    expect(gate.select(['start'], 0)).toBeUndefined();
    expect(gate.select(['output'], 1)).toBeUndefined();
    // a filtered-out change does not use up the throttle
    expect(gate.select(['logs'], 2)).toBe('logs');
    expect(gate.select(['completed'], 3)).toBeUndefined();
  });
});

describe('applyStep and toPublicObject', () => {
  it('walks starting → processing → succeeded with cumulative logs and metrics', () => {
    const r = record();
    expect(applyStep(r, { atMs: 0, kind: 'start' }, 1_300)).toEqual(['start']);
    expect(applyStep(r, { atMs: 0, kind: 'log', text: 'a\n' }, 1_400)).toEqual(['logs']);
    expect(applyStep(r, { atMs: 0, kind: 'log', text: 'b\n' }, 1_500)).toEqual(['logs']);
    expect(applyStep(r, { atMs: 0, kind: 'output', output: 'hi' }, 1_600)).toEqual(['output']);
    expect(applyStep(r, { atMs: 0, kind: 'succeed' }, 2_000)).toEqual(['completed']);
    expect(applyStep(r, { kind: 'cancel' }, 2_100)).toEqual([]);
    const object = toPublicObject(r, 'http://127.0.0.1:9');
    expect(object).toMatchObject({
      status: 'succeeded',
      logs: 'a\nb\n',
      output: 'hi',
      error: null,
      data_removed: false,
      source: 'api',
      started_at: formatTime(1_300),
      completed_at: formatTime(2_000),
      metrics: { predict_time: 0.7, total_time: 1 },
      urls: {
        get: 'http://127.0.0.1:9/v1/predictions/abc',
        cancel: 'http://127.0.0.1:9/v1/predictions/abc/cancel',
      },
      webhook_events_filter: ['completed'],
    });
    expect(object.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('aborts a prediction that never started: no started_at, no predict_time', () => {
    const r = record();
    applyStep(r, { kind: 'abort' }, 6_000);
    const object = toPublicObject(r, 'http://x');
    expect(object).toMatchObject({ status: 'aborted', started_at: null, metrics: { total_time: 5 } });
    expect(object.metrics).not.toHaveProperty('predict_time');
  });
});

describe('random', () => {
  it('makes Replicate-shaped ids and whsec_ secrets of 32 bytes', () => {
    expect(newPredictionId()).toMatch(/^[a-z0-9]{26}$/);
    const secret = newWebhookSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
  });

  it('gives the same sequence for the same seed, another for another', () => {
    const a = createPrng(42);
    const b = createPrng(42);
    const c = createPrng(43);
    const sa = [a(), a(), a()];
    expect([b(), b(), b()]).toEqual(sa);
    expect([c(), c(), c()]).not.toEqual(sa);
    for (const x of sa) expect(x >= 0 && x < 1).toBe(true);
  });
});
