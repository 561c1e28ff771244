import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestInlet,
  metricOf,
  postWebhook,
  prediction,
  signedHeaders,
  type TestInlet,
} from './helpers.js';

const KIB = 1024;

describe('the rejection log under a flood, and its API', () => {
  let inlet: TestInlet | undefined;
  afterEach(async () => {
    await inlet?.close();
    inlet = undefined;
  });

  const api = async (target: TestInlet, url: string) => {
    const res = await target.app.inject({ method: 'GET', url });
    return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
  };

  it('records a flood of forged requests from one address only within its budget, and counts the rest', async () => {
    const current = await createTestInlet();
    inlet = current;
    const forged = JSON.stringify(prediction({ logs: 'x'.repeat(64 * KIB) })).slice(0, 64 * KIB);
    const headers = {
      ...signedHeaders(forged),
      'webhook-signature': `v1,${Buffer.alloc(32).toString('base64')}`,
    };

    const started = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => postWebhook(current, forged, headers).then((r) => r.status)),
    );
    const seconds = (performance.now() - started) / 1000;
    // The answer to the sender does not change.
    expect(answers.every((status) => status === 403)).toBe(true);

    // A real delivery during the flood is stored as ever.
    const real = JSON.stringify(prediction({ id: 'pred_real', status: 'succeeded' }));
    expect((await postWebhook(current, real, signedHeaders(real))).status).toBe(200);

    // Every rejection is either written or counted as over the budget.
    for (let i = 0; i < 200; i++) {
      const settled =
        (await metricOf(current, 'inlet_rejections_recorded_total')) +
        (await metricOf(current, 'inlet_rejections_limited_total'));
      if (settled === 200) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    const recorded = await metricOf(current, 'inlet_rejections_recorded_total');
    const limited = await metricOf(current, 'inlet_rejections_limited_total');
    expect(recorded + limited).toBe(200);
    // 256 KiB per second by default: four 64 KiB bodies at once, four more each second.
    expect(recorded).toBeGreaterThanOrEqual(4);
    expect(recorded).toBeLessThanOrEqual(5 + Math.ceil(seconds * 4));
    expect(limited).toBeGreaterThan(150);

    const list = await api(current, '/api/rejections?limit=200');
    expect((list.json.data as unknown[]).length).toBe(recorded);
    const deliveries = await api(current, '/api/predictions/pred_real');
    expect(deliveries.status).toBe(200);
  });

  it('lists summaries (a long body cut to 64 KiB, saying so) and serves one rejection whole by id', async () => {
    const current = await createTestInlet();
    inlet = current;
    // Signed but not JSON: an authenticated invalid_json body is kept whole.
    const body = `{"id": "pred_broken", ${'y'.repeat(200 * KIB)}`;
    expect((await postWebhook(current, body, signedHeaders(body))).status).toBe(400);
    const small = '{"id": "pred_small"';
    expect((await postWebhook(current, small, signedHeaders(small))).status).toBe(400);

    let data: Record<string, unknown>[] = [];
    for (let i = 0; i < 200 && data.length < 2; i++) {
      data = (await api(current, '/api/rejections')).json.data as Record<string, unknown>[];
      if (data.length < 2) await new Promise((resolve) => setImmediate(resolve));
    }
    const [newest, cut] = data as [Record<string, unknown>, Record<string, unknown>];
    expect(newest).toMatchObject({ code: 'invalid_json', body: small });
    expect(newest.body_truncated).toBeUndefined();
    expect(cut).toMatchObject({
      code: 'invalid_json',
      body_truncated: true,
      body_bytes: Buffer.byteLength(body),
    });
    expect(cut.body).toBe(body.slice(0, 64 * KIB));
    for (const field of ['id', 'received_at', 'code', 'message', 'remote_address', 'headers', 'body']) {
      expect(cut).toHaveProperty(field);
    }

    const one = await api(current, `/api/rejections/${String(cut.id)}`);
    expect(one.status).toBe(200);
    expect(one.json).toMatchObject({ id: cut.id, code: 'invalid_json', body });
    expect(one.json.body_truncated).toBeUndefined();

    const missing = await api(current, '/api/rejections/rej_nope');
    expect(missing.status).toBe(404);
    expect(missing.json).toMatchObject({ error: { code: 'not_found' } });
  });
});
