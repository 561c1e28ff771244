import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommitBatcher } from '../ingest/commit-batcher.js';
import type { Clock } from '../clock.js';
import type { FetchedObject } from '../replicate/client.js';
import { openStore } from '../store/index.js';
import type { IncomingEvent, Store } from '../store/types.js';
import { pollDelayMs, RECONCILE_DEFAULTS } from './backoff.js';
import { pollDeliveryKey, pollEvent } from './poll-event.js';
import { ReconcileService, type ObjectFetcher } from './reconcile-service.js';

describe('pollDelayMs', () => {
  it('starts at 5 s, doubles per poll, stops at 5 min, and scales', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => pollDelayMs(n))).toEqual([
      5000, 5000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000,
    ]);
    expect(pollDelayMs(1000)).toBe(RECONCILE_DEFAULTS.maxPollMs);
    expect(pollDelayMs(2, 0.01)).toBe(100);
    expect(pollDelayMs(1, 0.00001)).toBe(1);
  });
});

describe('pollDeliveryKey', () => {
  it('is poll:<id>:<sha256 hex of the raw bytes>, so the same answer is the same key', () => {
    const body = Buffer.from('{"id":"p1","status":"processing"}');
    const hex = createHash('sha256').update(body).digest('hex');
    expect(pollDeliveryKey('p1', body)).toBe(`poll:p1:${hex}`);
    expect(pollDeliveryKey('p1', Buffer.from(body))).toBe(pollDeliveryKey('p1', body));
    expect(pollDeliveryKey('p1', Buffer.from('{"id":"p1", "status":"processing"}'))).not.toBe(
      pollDeliveryKey('p1', body),
    );
    const event = pollEvent({ id: 'p1', status: 'processing' }, body, 42);
    expect(event).toMatchObject({ scheme: 'poll', receivedAtMs: 42, webhookTimestampSec: null });
  });
});

/** A clock the test moves; timers are not used by `runOnce`. */
function fakeClock(start: number): Clock & { advance(ms: number): void } {
  let now = start;
  return {
    now: () => now,
    setTimeout: () => undefined,
    clearTimeout: () => undefined,
    advance: (ms) => (now += ms),
  };
}

const T0 = Date.UTC(2026, 0, 1);

function body(object: Record<string, unknown>): Buffer {
  return Buffer.from(JSON.stringify(object));
}

function webhookEvent(object: Record<string, unknown>, receivedAtMs: number, key: string): IncomingEvent {
  return {
    key,
    scheme: 'standard',
    receivedAtMs,
    webhookTimestampSec: null,
    headers: {},
    body: body(object),
    object: object as IncomingEvent['object'],
  };
}

describe('ReconcileService', () => {
  let dir: string;
  let store: Store;
  let batcher: CommitBatcher;
  let answers: Map<string, Record<string, unknown> | 'error'>;
  let fetched: string[];
  const fetcher: ObjectFetcher = {
    getObject: (_kind, id): Promise<FetchedObject> => {
      fetched.push(id);
      const answer = answers.get(id);
      if (answer === 'error') return Promise.reject(new Error('connection refused'));
      if (answer === undefined) return Promise.resolve({ found: false, status: 404 });
      return Promise.resolve({ found: true, body: body(answer), object: answer as never });
    },
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-reconcile-'));
    store = await openStore(`sqlite:${join(dir, 'inlet.db')}`, { mode: 'serve' });
    batcher = new CommitBatcher(store, { commitTimeoutMs: 5000, logger: pino({ level: 'silent' }) });
    answers = new Map();
    fetched = [];
  });
  afterEach(async () => {
    await batcher.drain();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  function service(clock: Clock) {
    return new ReconcileService({
      store,
      fetcher,
      sink: { ingestEvent: (e) => batcher.submit(e) },
      afterMs: 120_000,
      clock,
    });
  }

  it('tracks an object quiet for afterMs, polls it with backoff, and folds the answer once', async () => {
    const clock = fakeClock(T0);
    const started = { id: 'p1', status: 'processing', logs: 'a\n' };
    await store.commitEvents([webhookEvent(started, T0, 'msg_1')]);
    const reconcile = service(clock);

    clock.advance(119_000);
    expect(await reconcile.runOnce()).toEqual([]);
    expect(fetched).toEqual([]);

    clock.advance(1000);
    answers.set('p1', { id: 'p1', status: 'processing', logs: 'a\nb\n' });
    const [first] = await reconcile.runOnce();
    expect(first).toMatchObject({
      id: 'p1',
      source: 'stale',
      from: 'processing',
      to: 'processing',
      outcome: 'changed',
      done: false,
    });
    expect(await store.recover.getTracked('p1')).toMatchObject({
      attempts: 1,
      nextPollAtMs: clock.now() + 5000,
    });

    clock.advance(5000);
    const [same] = await reconcile.runOnce();
    expect(same?.outcome).toBe('unchanged');
    expect(await store.recover.getTracked('p1')).toMatchObject({
      attempts: 2,
      nextPollAtMs: clock.now() + 10_000,
    });

    clock.advance(9_999);
    expect(await reconcile.runOnce()).toEqual([]);
    clock.advance(1);
    answers.set('p1', { id: 'p1', status: 'aborted', logs: 'a\nb\n' });
    const [done] = await reconcile.runOnce();
    expect(done).toMatchObject({ to: 'aborted', outcome: 'changed', done: true });
    expect((await store.getPrediction('p1'))?.status).toBe('aborted');

    const { items } = await store.listEvents('p1', { limit: 10 });
    expect(items.map((e) => e.scheme)).toEqual(['standard', 'poll', 'poll']);
    const transitions = await store.transitions.listTransitions({ afterSeq: 0, limit: 100 });
    expect(transitions.filter((t) => t.type === 'prediction.completed')).toHaveLength(1);

    clock.advance(3_600_000);
    expect(await reconcile.runOnce()).toEqual([]);
    expect(fetched).toEqual(['p1', 'p1', 'p1']);
  });

  it('stops without polling when a webhook ended it, waits while webhooks flow, gives up on 404 and after a day', async () => {
    const clock = fakeClock(T0);
    const reconcile = service(clock);
    const track = (id: string) =>
      store.recover.track({
        id,
        kind: 'prediction',
        source: 'predict',
        createdAtMs: clock.now(),
        nextPollAtMs: clock.now() + 5000,
      });
    await track('ended');
    await track('flowing');
    await track('gone');
    await track('old');
    clock.advance(1000);
    await store.commitEvents([
      webhookEvent({ id: 'ended', status: 'succeeded', output: 'x' }, clock.now(), 'msg_e'),
      webhookEvent({ id: 'flowing', status: 'processing' }, clock.now(), 'msg_f'),
    ]);
    answers.set('old', { id: 'old', status: 'processing' });
    clock.advance(4000);
    const reports = new Map((await reconcile.runOnce()).map((r) => [r.id, r]));
    expect(reports.get('ended')).toMatchObject({ outcome: 'already_terminal', done: true });
    expect(reports.get('flowing')).toMatchObject({ outcome: 'waiting', done: false });
    expect(reports.get('gone')).toMatchObject({ outcome: 'not_found', done: true, from: null });
    expect(reports.get('old')).toMatchObject({ outcome: 'changed', done: false });
    expect(fetched.sort()).toEqual(['gone', 'old']);
    expect((await store.recover.getTracked('flowing'))?.nextPollAtMs).toBe(T0 + 1000 + 120_000);

    clock.advance(RECONCILE_DEFAULTS.maxAgeMs);
    const later = new Map((await reconcile.runOnce()).map((r) => [r.id, r]));
    expect(later.get('old')).toMatchObject({ outcome: 'expired', done: true });
  });

  it('retries a failed fetch later, and a dry run stores nothing', async () => {
    const clock = fakeClock(T0);
    const reconcile = service(clock);
    await store.recover.track({
      id: 'p2',
      kind: 'prediction',
      source: 'predict',
      createdAtMs: T0,
      nextPollAtMs: T0,
    });
    answers.set('p2', 'error');
    const [failed] = await reconcile.runOnce();
    expect(failed).toMatchObject({ outcome: 'failed', done: false, error: 'connection refused' });
    expect(await store.recover.getTracked('p2')).toMatchObject({
      attempts: 1,
      nextPollAtMs: T0 + 5000,
      done: false,
    });

    answers.set('p2', { id: 'p2', status: 'succeeded', output: 'hi' });
    const [dry] = await reconcile.runOnce({ dryRun: true, all: true });
    expect(dry).toMatchObject({ outcome: 'changed', to: 'succeeded', dryRun: true });
    expect(await store.getPrediction('p2')).toBeUndefined();
    expect(await store.recover.getTracked('p2')).toMatchObject({ attempts: 1, done: false });

    const [real] = await reconcile.runOnce({ all: true });
    expect(real).toMatchObject({ outcome: 'changed', done: true });
    expect((await store.getPrediction('p2'))?.status).toBe('succeeded');
  });
});
