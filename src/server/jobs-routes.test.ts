import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { messageIdFor, type ConsumerDefinition } from '../jobs/consumer.js';
import type { AttemptResult, Deliverer, OutboundMessage } from '../jobs/deliverer.js';
import { FakeClock, FakeTransitionLog } from '../jobs/fakes.test-suite.js';
import { Runner } from '../jobs/runner.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { createAdminAccessHook } from './admin-access.js';
import { registerApiRoutes } from './api-routes.js';
import { registerJobsRoutes } from './jobs-routes.js';

class Switch implements Deliverer {
  result: AttemptResult = { outcome: 'delivered', status: 200, durationMs: 1 };
  readonly seen: OutboundMessage[] = [];
  async deliver(message: OutboundMessage): Promise<AttemptResult> {
    this.seen.push(message);
    return this.result;
  }
}

describe('jobs API', () => {
  let dir: string;
  let store: SqliteStore;
  let app: FastifyInstance;
  let log: FakeTransitionLog;
  let clock: FakeClock;
  let runner: Runner;
  let deliverer: Switch;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-jobs-api-'));
    store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
    log = new FakeTransitionLog();
    clock = new FakeClock();
    deliverer = new Switch();
    runner = new Runner({ jobs: store.jobs, log, clock, random: () => 0.5 });
    const definition: ConsumerDefinition = {
      name: 'app',
      kind: 'destination',
      events: ['prediction.completed'],
      ordered: true,
      maxInFlight: 4,
      retryDelaysMs: [1000],
      attemptTimeoutMs: 5000,
      deliverer,
      config: { url: 'http://127.0.0.1:9/hook', events: ['prediction.completed'], models: null },
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    };
    runner.add(definition);
    await runner.idle();
    app = Fastify();
    await app.register(
      async (scope) => {
        scope.addHook('onRequest', createAdminAccessHook({ adminToken: 'tok' }));
        registerApiRoutes(scope, store);
        registerJobsRoutes(scope, {
          jobs: store.jobs,
          log,
          now: () => clock.now(),
          testDeliverer: () => deliverer,
        });
      },
      { prefix: '/api' },
    );
  });

  afterEach(async () => {
    await runner.stop();
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const auth = { authorization: 'Bearer tok' };
  const get = async (url: string) => {
    const res = await app.inject({ method: 'GET', url, headers: auth });
    return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
  };
  const post = async (url: string, payload?: unknown) => {
    const res = await app.inject({
      method: 'POST',
      url,
      headers: auth,
      ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }),
    });
    return { status: res.statusCode, json: res.json<Record<string, unknown>>() };
  };

  it('needs the token like the rest of /api', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/destinations' })).statusCode).toBe(401);
  });

  it('lists destinations with their counts', async () => {
    log.append('p1', 'prediction.completed');
    deliverer.result = { outcome: 'retry', status: 500, error: 'HTTP 500', durationMs: 3 };
    await runner.idle();
    clock.advance(2000);
    await runner.idle();
    const { json } = await get('/api/destinations');
    expect(json.data).toEqual([
      {
        name: 'app',
        url: 'http://127.0.0.1:9/hook',
        events: ['prediction.completed'],
        models: null,
        enabled: true,
        disabled_reason: null,
        pending: 0,
        dead: 1,
        last_delivered_at: null,
        last_error: 'HTTP 500',
      },
    ]);
  });

  it('lists and shows messages, retries a dead one, and refuses to retry one that is not dead', async () => {
    const t = log.append('p1', 'prediction.completed');
    deliverer.result = { outcome: 'retry', status: 503, error: 'HTTP 503', durationMs: 3 };
    await runner.idle();
    clock.advance(2000);
    await runner.idle();
    const id = messageIdFor('app', t.id);
    const list = await get('/api/messages?state=dead&destination=app');
    expect(list.json).toEqual({
      data: [
        {
          id,
          destination: 'app',
          type: 'prediction.completed',
          prediction_id: 'p1',
          transition_id: t.id,
          state: 'dead',
          attempts: 2,
          next_attempt_at: null,
          last_status: 503,
          last_error: 'HTTP 503',
          created_at: expect.any(String) as string,
          delivered_at: null,
        },
      ],
      next_cursor: null,
    });
    const detail = await get(`/api/messages/${id}`);
    expect(detail.json.attempt_log).toEqual([
      { at: expect.any(String) as string, status: 503, duration_ms: 3, error: 'HTTP 503' },
      { at: expect.any(String) as string, status: 503, duration_ms: 3, error: 'HTTP 503' },
    ]);
    expect((await get('/api/messages/msg_nope')).status).toBe(404);
    expect((await get('/api/messages?state=lost')).status).toBe(400);

    deliverer.result = { outcome: 'delivered', status: 200, durationMs: 1 };
    const retried = await post(`/api/messages/${id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.json.state).toBe('pending');
    const again = await post(`/api/messages/${id}/retry`);
    expect(again.status).toBe(409);
    expect((again.json.error as { code: string }).code).toBe('conflict');
    await runner.idle();
    expect((await get(`/api/messages/${id}`)).json).toMatchObject({ state: 'delivered', attempts: 3 });
  });

  it('pages messages newest first', async () => {
    for (let i = 0; i < 3; i++) log.append(`p${i}`, 'prediction.completed');
    await runner.idle();
    const first = await get('/api/messages?limit=2');
    expect((first.json.data as { prediction_id: string }[]).map((m) => m.prediction_id)).toEqual([
      'p2',
      'p1',
    ]);
    const next = await get(`/api/messages?limit=2&cursor=${String(first.json.next_cursor)}`);
    expect((next.json.data as { prediction_id: string }[]).map((m) => m.prediction_id)).toEqual(['p0']);
    expect(next.json.next_cursor).toBeNull();
    expect((await get('/api/messages?prediction_id=p1')).json.data).toHaveLength(1);
  });

  it('replays matching transitions as the same messages', async () => {
    const t1 = log.append('p1', 'prediction.completed');
    log.append('p2', 'prediction.started');
    log.append('p2', 'prediction.completed', { status: 'failed' });
    await runner.idle();
    expect(deliverer.seen).toHaveLength(2);
    const byId = await post('/api/replays', { destination: 'app', prediction_ids: ['p1'] });
    expect(byId).toEqual({ status: 202, json: { count: 1 } });
    await runner.idle();
    expect(deliverer.seen.map((m) => m.id)).toEqual([
      messageIdFor('app', t1.id),
      expect.any(String) as string,
      messageIdFor('app', t1.id),
    ]);
    const byStatus = await post('/api/replays', {
      destination: 'app',
      since: '1970-01-01T00:00:00Z',
      status: 'failed',
    });
    expect(byStatus.json).toEqual({ count: 1 });
    expect((await post('/api/replays', { destination: 'app' })).status).toBe(400);
    expect((await post('/api/replays', { destination: 'nope', prediction_ids: ['p1'] })).status).toBe(404);
    expect(
      (await post('/api/replays', { destination: 'app', prediction_ids: ['p1'], color: 1 })).status,
    ).toBe(400);
  });

  it('shows one destination with its secret and config; retries every dead message; dry-run replays', async () => {
    const one = await get('/api/destinations/app');
    expect(one.json).toMatchObject({
      name: 'app',
      secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      config: { url: 'http://127.0.0.1:9/hook' },
    });
    expect((await get('/api/destinations/nope')).status).toBe(404);

    deliverer.result = { outcome: 'retry', status: 500, error: 'HTTP 500', durationMs: 3 };
    log.append('p1', 'prediction.completed');
    log.append('p2', 'prediction.completed');
    await runner.idle();
    clock.advance(2000);
    await runner.idle();
    expect((await get('/api/messages?state=dead')).json.data).toHaveLength(2);
    expect(await post('/api/messages/retry-dead', { destination: 'nope' })).toEqual({
      status: 202,
      json: { count: 0 },
    });
    expect(await post('/api/messages/retry-dead', {})).toEqual({ status: 202, json: { count: 2 } });
    expect((await get('/api/messages?state=pending')).json.data).toHaveLength(2);
    expect((await post('/api/messages/retry-dead', { destination: 3 })).status).toBe(400);
    expect((await post('/api/messages/retry-dead', { state: 'dead' })).status).toBe(400);

    const seen = deliverer.seen.length;
    deliverer.result = { outcome: 'delivered', status: 200, durationMs: 1 };
    await runner.idle();
    const dry = await post('/api/replays', { destination: 'app', prediction_ids: ['p1'], dry_run: true });
    expect(dry).toEqual({ status: 200, json: { count: 1 } });
    await runner.idle();
    expect(deliverer.seen).toHaveLength(seen + 2);
    expect((await get('/api/messages?state=pending')).json.data).toHaveLength(0);
    expect(
      (await post('/api/replays', { destination: 'app', prediction_ids: ['p1'], dry_run: 'yes' })).status,
    ).toBe(400);
  });

  it('disables and enables a destination, from where it stopped or from now', async () => {
    const off = await post('/api/destinations/app/disable');
    expect(off.json).toMatchObject({ enabled: false, disabled_reason: 'disabled by an operator' });
    log.append('p1', 'prediction.completed');
    await runner.idle();
    expect(deliverer.seen).toHaveLength(0);
    const on = await post('/api/destinations/app/enable');
    expect(on.json).toMatchObject({ enabled: true, disabled_reason: null });
    await runner.idle();
    expect(deliverer.seen.map((m) => m.objectId)).toEqual(['p1']);

    await post('/api/destinations/app/disable');
    log.append('p2', 'prediction.completed');
    await runner.idle();
    await post('/api/destinations/app/enable?from=now');
    log.append('p3', 'prediction.completed');
    await runner.idle();
    expect(deliverer.seen.map((m) => m.objectId)).toEqual(['p1', 'p3']);
    expect((await post('/api/destinations/nope/enable')).status).toBe(404);
  });

  it('sends a test message', async () => {
    const res = await post('/api/destinations/app/test');
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ outcome: 'delivered', status: 200 });
    expect(deliverer.seen[0]?.type).toBe('inlet.test');
  });
});
