import { afterEach, describe, expect, it, vi } from 'vitest';
import { createTestInlet, OTHER_SECRET, prediction, signedHeaders, type TestInlet } from './helpers.js';

let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

interface Minute {
  minute: string;
  accepted: number;
  duplicate: number;
  rejected: number;
}

async function post(body: string, headers: Record<string, string>) {
  return inlet!.app.inject({ method: 'POST', url: '/replicate-webhook', payload: body, headers });
}

describe('GET /api/stats/deliveries', () => {
  it('answers every minute of the window with accepted, duplicate and rejected counts', async () => {
    inlet = await createTestInlet();
    const first = JSON.stringify(prediction({ id: 'stats1' }));
    const headers = signedHeaders(first);
    expect((await post(first, headers)).statusCode).toBe(200);
    expect((await post(first, headers)).statusCode).toBe(200);
    const second = JSON.stringify(prediction({ id: 'stats2' }));
    expect((await post(second, signedHeaders(second))).statusCode).toBe(200);
    expect((await post(second, signedHeaders(second, { secret: OTHER_SECRET }))).statusCode).toBe(403);
    // Rejections are written after their answer.
    await vi.waitFor(async () => {
      const rejections = (await inlet!.app.inject({ url: '/api/rejections' })).json();
      expect(rejections.data).toHaveLength(1);
    });

    const res = await inlet.app.inject({ url: '/api/stats/deliveries?minutes=5' });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ since: string; until: string; data: Minute[] }>();
    expect(body.data).toHaveLength(5);
    expect(Date.parse(body.until) - Date.parse(body.since)).toBe(5 * 60_000);
    expect(body.data[0]!.minute).toBe(body.since);
    expect(Date.parse(body.data[4]!.minute)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(body.until)).toBeGreaterThan(Date.now());
    const total = (key: 'accepted' | 'duplicate' | 'rejected') =>
      body.data.reduce((sum, minute) => sum + minute[key], 0);
    expect([total('accepted'), total('duplicate'), total('rejected')]).toEqual([2, 1, 1]);

    const hour = (await inlet.app.inject({ url: '/api/stats/deliveries' })).json<{ data: Minute[] }>();
    expect(hour.data).toHaveLength(60);
  });

  it('refuses a window it cannot give', async () => {
    inlet = await createTestInlet();
    for (const minutes of ['0', '1441', 'x', '1.5']) {
      const res = await inlet.app.inject({ url: `/api/stats/deliveries?minutes=${minutes}` });
      expect(res.statusCode).toBe(400);
      expect(res.json().error.code).toBe('invalid_query');
    }
  });
});

describe('GET /api/predictions/:id/transitions', () => {
  it('lists what changed for one prediction, in order, in pages', async () => {
    inlet = await createTestInlet();
    const base = prediction({ id: 'tr1' });
    for (const object of [
      { ...base, status: 'starting' },
      { ...base, status: 'processing', logs: 'step 1' },
      { ...base, status: 'succeeded', logs: 'step 1', output: ['x'] },
    ]) {
      const body = JSON.stringify(object);
      expect((await post(body, signedHeaders(body))).statusCode).toBe(200);
    }
    const first = (await inlet.app.inject({ url: '/api/predictions/tr1/transitions?limit=2' })).json();
    expect(first.data.map((t: { type: string }) => t.type)).toEqual([
      'prediction.started',
      'prediction.logs',
    ]);
    expect(first.data[0]).toMatchObject({ status: 'starting', id: expect.stringMatching(/^tr_/) });
    expect(first.data[0].recorded_at).toMatch(/^\d{4}-.*Z$/);
    expect(first.next_cursor).not.toBeNull();
    const rest = (
      await inlet.app.inject({ url: `/api/predictions/tr1/transitions?limit=2&cursor=${first.next_cursor}` })
    ).json();
    expect(rest.data.map((t: { type: string }) => t.type)).toEqual(['prediction.completed']);
    expect(rest.next_cursor).toBeNull();
    expect((await inlet.app.inject({ url: '/api/predictions/nope/transitions' })).statusCode).toBe(404);
  });
});
