import { describe, expect, it } from 'vitest';
import type { TransitionRecord } from './store/transition-types.js';
import type { ObjectRecord } from './store/types.js';
import { predictionView, transitionDataView } from './views.js';

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
});
