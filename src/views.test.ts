import { describe, expect, it } from 'vitest';
import type { TransitionRecord } from './store/transition-types.js';
import type { ObjectRecord } from './store/types.js';
import { predictionSummaryView, predictionView, transitionDataView } from './views.js';

describe('transitionDataView', () => {
  it('shows a transition’s object exactly as GET /api/predictions/:id shows the folded state', () => {
    const object = {
      id: 'p1',
      status: 'succeeded',
      model: 'acme/echo',
      output: ['a'],
      extra_field: 1,
      data_removed: false,
    };
    const common = {
      kind: 'prediction' as const,
      eventCount: 3,
      firstReceivedAtMs: 1000,
      lastReceivedAtMs: 5000,
    };
    const transition: TransitionRecord = {
      ...common,
      seq: 7,
      id: 'tr_1',
      type: 'prediction.completed',
      objectId: 'p1',
      model: 'acme/echo',
      status: 'succeeded',
      eventKey: 'msg_1',
      recordedAtMs: 5000,
      body: Buffer.from(JSON.stringify(object)),
    };
    const folded: ObjectRecord = {
      ...common,
      id: 'p1',
      status: 'succeeded',
      model: 'acme/echo',
      conflictCount: 0,
      summary: {},
      object,
      winningEventKey: 'msg_1',
    };
    const view = transitionDataView(transition);
    expect(view).toEqual(predictionView(folded));
    expect(view).toMatchObject({
      id: 'p1',
      input: null,
      logs: null,
      kind: 'prediction',
      event_count: 3,
      first_received_at: '1970-01-01T00:00:01.000Z',
      last_received_at: '1970-01-01T00:00:05.000Z',
      extra_field: 1,
    });
  });

  it('keeps fields named __proto__, constructor and toString as fields, at the top and inside', () => {
    const text =
      '{"id":"p2","status":"succeeded","input":{"__proto__":{"a":1},"constructor":"c"},' +
      '"__proto__":{"top":1},"constructor":"top","toString":"t"}';
    const record: ObjectRecord = {
      kind: 'prediction',
      eventCount: 1,
      firstReceivedAtMs: 1000,
      lastReceivedAtMs: 1000,
      id: 'p2',
      status: 'succeeded',
      model: null,
      conflictCount: 0,
      summary: JSON.parse(text) as Record<string, unknown>,
      object: JSON.parse(text) as ObjectRecord['object'],
      winningEventKey: 'msg_2',
    };
    const view = JSON.stringify(predictionView(record));
    expect(view).toContain('"input":{"__proto__":{"a":1},"constructor":"c"}');
    expect(view).toContain('"__proto__":{"top":1},"constructor":"top","toString":"t"');
    expect(Object.getPrototypeOf(predictionView(record))).toBe(Object.prototype);
    const summary = JSON.stringify(predictionSummaryView(record));
    expect(summary).toContain('"__proto__":{"top":1},"constructor":"top","toString":"t"');
  });
});
