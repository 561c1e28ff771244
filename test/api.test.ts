import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  createTestInlet,
  OTHER_SECRET,
  postWebhook,
  prediction,
  signedHeaders,
  type TestInlet,
} from './helpers.js';

let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

const ISO_MS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

async function deliver(body: Record<string, unknown>, opts: { id?: string; timestampSec?: number } = {}) {
  const text = JSON.stringify(body);
  const res = await inlet!.app.inject({
    method: 'POST',
    url: '/replicate-webhook',
    payload: text,
    headers: signedHeaders(text, opts),
  });
  expect(res.statusCode, res.body).toBe(200);
  return res.json();
}

const get = async (url: string, headers: Record<string, string> = {}) => {
  const res = await inlet!.app.inject({ url, headers });
  return { status: res.statusCode, json: res.json() };
};

describe('admin API (CONTRACT §5)', () => {
  it('folds out-of-order deliveries and shows the contract fields', async () => {
    inlet = await createTestInlet();
    const base = prediction();
    const now = Math.floor(Date.now() / 1000);
    await deliver(
      { ...base, status: 'processing', logs: 'a\nb\n', output: ['x', 'y'] },
      { timestampSec: now - 2 },
    );
    await deliver(
      {
        ...base,
        status: 'succeeded',
        logs: 'a\nb\nc\n',
        output: ['x', 'y', 'z'],
        completed_at: '2026-11-27T13:39:00Z',
      },
      { timestampSec: now - 1 },
    );
    await deliver({ ...base, status: 'starting' }, { timestampSec: now - 3 });
    await deliver({ ...base, status: 'failed', error: 'late' }, { timestampSec: now });

    const detail = await get(`/api/predictions/${String(base.id)}`);
    expect(detail.status).toBe(200);
    for (const field of [
      'id',
      'model',
      'version',
      'status',
      'input',
      'output',
      'error',
      'logs',
      'metrics',
      'created_at',
      'started_at',
      'completed_at',
      'urls',
      'kind',
      'event_count',
      'first_received_at',
      'last_received_at',
    ]) {
      expect(detail.json, field).toHaveProperty(field);
    }
    expect(detail.json).toMatchObject({
      status: 'succeeded',
      output: ['x', 'y', 'z'],
      kind: 'prediction',
      event_count: 4,
      completed_at: '2026-11-27T13:39:00Z',
    });
    expect(detail.json.last_received_at).toMatch(ISO_MS);

    const events = await get(`/api/predictions/${String(base.id)}/events`);
    expect(events.json.data.map((e: { status: string }) => e.status)).toEqual([
      'processing',
      'succeeded',
      'starting',
      'failed',
    ]);
    expect(events.json.data.map((e: { conflict: boolean }) => e.conflict)).toEqual([
      false,
      false,
      false,
      true,
    ]);
    for (const e of events.json.data)
      expect(Object.keys(e).sort()).toEqual([
        'conflict',
        'duplicates',
        'id',
        'received_at',
        'scheme',
        'status',
      ]);
    expect(events.json.next_cursor).toBeNull();

    const list = await get('/api/predictions');
    expect(list.json.data[0]).toMatchObject({ id: base.id, status: 'succeeded', event_count: 4 });
    expect(list.json.data[0]).not.toHaveProperty('input');
    expect(list.json.data[0]).not.toHaveProperty('output');
    expect(list.json.data[0]).not.toHaveProperty('logs');
  });

  it('shows one event with redacted headers and the byte-exact body', async () => {
    inlet = await createTestInlet();
    const body = `{"id": "pred_exact", "status":"starting",  "x": "\u00e9"}`;
    const headers = { ...signedHeaders(body, { id: 'msg_exact' }), cookie: 'a=b' };
    await postWebhook(inlet, body, headers);
    const again = await postWebhook(inlet, body, headers);
    expect(again.json).toEqual({ received: true, duplicate: true });
    const event = await get('/api/events/msg_exact');
    expect(event.json).toMatchObject({
      id: 'msg_exact',
      prediction_id: 'pred_exact',
      status: 'starting',
      scheme: 'standard',
      duplicates: 1,
      conflict: false,
      body,
    });
    expect(event.json.headers['webhook-signature']).toBe('[redacted]');
    expect(event.json.headers.cookie).toBe('[redacted]');
    expect(event.json.headers['webhook-id']).toBe('msg_exact');
    expect(event.json.headers['content-type']).toBe('application/json');
    const detail = await get('/api/predictions/pred_exact');
    expect(detail.json.event_count).toBe(1);
  });

  it('redacts credentials a client or a proxy adds, in events and rejections', async () => {
    inlet = await createTestInlet();
    const secrets = {
      authorization: 'Bearer client-secret',
      'proxy-authorization': 'Basic cHJveHk6c2VjcmV0',
      cookie: 'session=abc',
      'set-cookie': 'session=abc',
      'x-api-key': 'key-secret',
    };
    const body = JSON.stringify(prediction({ id: 'pred_redact' }));
    await postWebhook(inlet, body, { ...signedHeaders(body, { id: 'msg_redact' }), ...secrets });
    const event = await get('/api/events/msg_redact');
    await postWebhook(inlet, body, { ...signedHeaders(body, { secret: OTHER_SECRET }), ...secrets });
    // The rejection log writes behind the answer: wait until it holds the rejection.
    const rejection = await vi.waitFor(async () => {
      const [first] = (await get('/api/rejections')).json.data;
      expect(first?.code).toBe('invalid_signature');
      return first;
    });
    for (const headers of [event.json.headers, rejection.headers]) {
      for (const name of Object.keys(secrets)) expect(headers[name], name).toBe('[redacted]');
      expect(JSON.stringify(headers)).not.toMatch(/secret|cHJveHk|abc/);
      expect(headers['content-type']).toBe('application/json');
    }
  });

  it('pages with keyset cursors and filters by status, model, q, since and until', async () => {
    inlet = await createTestInlet();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const p = prediction({
        model: i % 2 === 0 ? 'acme/even' : 'acme/odd',
        status: i < 3 ? 'succeeded' : 'processing',
      });
      ids.push(String(p.id));
      await deliver(p);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = await get(`/api/predictions?limit=3${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      seen.push(...page.json.data.map((p: { id: string }) => p.id));
      cursor = page.json.next_cursor;
    } while (cursor);
    expect(seen.sort()).toEqual([...ids].sort());

    expect((await get('/api/predictions?status=succeeded')).json.data).toHaveLength(3);
    expect((await get('/api/predictions?status=succeeded,processing')).json.data).toHaveLength(7);
    expect((await get('/api/predictions?model=acme/odd')).json.data).toHaveLength(3);
    expect((await get('/api/predictions?model=acme/od')).json.data).toHaveLength(0);
    expect((await get('/api/predictions?q=ACME%2FOD')).json.data).toHaveLength(3);
    expect((await get(`/api/predictions?q=${ids[4]}`)).json.data).toHaveLength(1);
    expect(
      (await get('/api/predictions?since=2000-01-01T00:00:00Z&until=2999-01-01T00:00:00.000Z')).json.data,
    ).toHaveLength(7);
    expect((await get('/api/predictions?until=2000-01-01T00:00:00Z')).json.data).toHaveLength(0);
    expect((await get('/api/predictions?status=&model=')).json.data).toHaveLength(7);
  });

  it('answers 400 invalid_query to bad parameters and 404 to unknown ids', async () => {
    inlet = await createTestInlet();
    for (const q of [
      'limit=0',
      'limit=201',
      'limit=abc',
      'limit=1.5',
      'cursor=%%%',
      'cursor=abc',
      'since=yesterday',
      'until=2026-13-45',
      'status=a,,b',
    ]) {
      const res = await get(`/api/predictions?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.json.error.code).toBe('invalid_query');
    }
    expect((await get('/api/rejections?limit=0')).json.error.code).toBe('invalid_query');
    expect((await get('/api/predictions/nope')).json.error.code).toBe('not_found');
    expect((await get('/api/predictions/nope/events')).status).toBe(404);
    expect((await get('/api/events/nope')).status).toBe(404);
  });

  it('serves health and readiness', async () => {
    inlet = await createTestInlet();
    expect((await get('/healthz')).status).toBe(200);
    expect((await get('/readyz')).status).toBe(200);
  });

  it('answers /healthz and /readyz to anyone, token or not, revealing nothing else', async () => {
    for (const env of [{}, { INLET_ADMIN_TOKEN: 's3cret-token' }] as Record<string, string>[]) {
      inlet = await createTestInlet(env);
      // Requests the admin API refuses: a foreign client, Host or proxy, and no token.
      const strangers = [
        { remoteAddress: '203.0.113.9' },
        { headers: { host: 'example.com' } },
        { headers: { 'x-forwarded-for': '203.0.113.9' } },
        { remoteAddress: '203.0.113.9', headers: { host: 'example.com', forwarded: 'for=203.0.113.9' } },
      ];
      for (const stranger of strangers) {
        const api = await inlet.app.inject({ url: '/api/predictions', ...stranger });
        expect(api.statusCode, JSON.stringify({ env, stranger })).toBeGreaterThanOrEqual(401);
        const health = await inlet.app.inject({ url: '/healthz', ...stranger });
        expect(health.statusCode, JSON.stringify(stranger)).toBe(200);
        expect(health.json()).toEqual({ status: 'ok' });
        const ready = await inlet.app.inject({ url: '/readyz', ...stranger });
        expect(ready.statusCode, JSON.stringify(stranger)).toBe(200);
        expect(ready.json()).toEqual({ status: 'ready' });
      }
      await inlet.close();
      inlet = undefined;
    }
  });

  it('answers loopback only without a token, and refuses proxies and foreign Host names', async () => {
    inlet = await createTestInlet();
    expect((await get('/api/predictions')).status).toBe(200);
    const remote = await inlet.app.inject({ url: '/api/predictions', remoteAddress: '203.0.113.9' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json().error.code).toBe('forbidden');
    expect((await get('/api/predictions', { 'x-forwarded-for': '203.0.113.9' })).status).toBe(403);
    expect((await get('/api/predictions', { forwarded: 'for=203.0.113.9' })).status).toBe(403);
    expect((await get('/api/predictions', { host: 'evil.example.com' })).status).toBe(403);
    expect((await get('/api/predictions', { host: '127.0.0.1:5000' })).status).toBe(200);
    expect((await get('/api/predictions', { host: '[::1]:5000' })).status).toBe(200);
    expect((await get('/api/predictions', { host: 'LOCALHOST' })).status).toBe(200);
    // The Host is read strictly: a loopback name followed by anything but `:port` is someone else's.
    for (const host of [
      '[::1]evil',
      '[::1]evil.com:5000',
      'localhost.evil.com',
      '127.0.0.1.nip.io',
      'localhost:abc',
    ]) {
      const res = await get('/api/predictions', { host });
      expect(res.status, host).toBe(403);
      expect(res.json.error.message).toContain('Host');
    }
    // The webhook itself never needs the token or loopback.
    const body = JSON.stringify(prediction());
    const res = await inlet.app.inject({
      method: 'POST',
      url: '/replicate-webhook',
      payload: body,
      headers: signedHeaders(body),
      remoteAddress: '203.0.113.9',
    });
    expect(res.statusCode).toBe(200);
  });

  it('needs the bearer token when INLET_ADMIN_TOKEN is set', async () => {
    inlet = await createTestInlet({ INLET_ADMIN_TOKEN: 's3cret-token' });
    expect((await get('/api/predictions')).json.error.code).toBe('unauthorized');
    expect((await get('/api/predictions', { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await get('/api/predictions', { authorization: 'Bearer s3cret-token' })).status).toBe(200);
    const remote = await inlet.app.inject({
      url: '/api/predictions',
      remoteAddress: '203.0.113.9',
      headers: { authorization: 'Bearer s3cret-token' },
    });
    expect(remote.statusCode).toBe(200);
  });

  it('recognises trainings by their output', async () => {
    inlet = await createTestInlet();
    const t = prediction({
      status: 'succeeded',
      output: { version: 'abc', weights: 'https://replicate.delivery/w.tar' },
    });
    await deliver(t);
    expect((await get(`/api/predictions/${String(t.id)}`)).json.kind).toBe('training');
  });
});
