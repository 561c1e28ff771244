import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from '../../test/pg-helpers.js';
import { parseTimeScale } from '../config.js';
import type { JobStore } from '../store/job-types.js';
import { openPostgresStore } from '../store/postgres/postgres-store.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { Store } from '../store/types.js';
import { messageIdFor, modelMatches, typeMatches, type ConsumerDefinition } from './consumer.js';
import type { AttemptResult, Deliverer, OutboundMessage } from './deliverer.js';
import { FakeClock, FakeTransitionLog } from './fakes.test-suite.js';
import { Runner, verdictFor } from './runner.js';

/** Answers each attempt from a script (the last entry repeats) and keeps what it saw. */
class ScriptedDeliverer implements Deliverer {
  readonly seen: OutboundMessage[] = [];
  active = 0;
  maxActive = 0;
  gate: Promise<void> | undefined;
  constructor(public script: AttemptResult['outcome'][] | ((m: OutboundMessage) => AttemptResult)) {}

  async deliver(message: OutboundMessage, signal: AbortSignal): Promise<AttemptResult> {
    this.seen.push(message);
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      if (this.gate !== undefined) {
        await Promise.race([
          this.gate,
          new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true })),
        ]);
      } else {
        await new Promise((resolve) => setImmediate(resolve));
      }
      if (typeof this.script === 'function') return this.script(message);
      const outcome = this.script[Math.min(this.seen.length - 1, this.script.length - 1)] ?? 'delivered';
      if (outcome === 'delivered') return { outcome, status: 200, durationMs: 1 };
      if (outcome === 'disable') return { outcome, status: 410, reason: 'gone', durationMs: 1 };
      return { outcome, status: 500, error: 'HTTP 500', durationMs: 1 };
    } finally {
      this.active--;
    }
  }
}

/** `jobs` with some methods replaced; the others go to `jobs` itself. */
function jobsWith(jobs: JobStore, replaced: Partial<JobStore>): JobStore {
  return new Proxy(jobs, {
    get(target, prop) {
      if (prop in replaced) return replaced[prop as keyof JobStore];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function consumer(deliverer: Deliverer, over: Partial<ConsumerDefinition> = {}): ConsumerDefinition {
  return {
    name: 'app',
    kind: 'destination',
    events: ['prediction.*'],
    ordered: true,
    maxInFlight: 10,
    retryDelaysMs: [1000, 2000, 3000],
    attemptTimeoutMs: 10_000,
    deliverer,
    ...over,
  };
}

describe('filters and ids', () => {
  it('match event and model patterns', () => {
    expect(typeMatches(['*'], 'training.logs')).toBe(true);
    expect(typeMatches(['prediction.*'], 'prediction.completed')).toBe(true);
    expect(typeMatches(['prediction.*'], 'training.completed')).toBe(false);
    expect(typeMatches(['prediction.completed'], 'prediction.output')).toBe(false);
    expect(modelMatches(undefined, null)).toBe(true);
    expect(modelMatches(['acme/*'], 'acme/painter')).toBe(true);
    expect(modelMatches(['acme/*'], 'other/painter')).toBe(false);
    expect(modelMatches(['acme/painter'], null)).toBe(false);
  });

  it('read INLET_TIME_SCALE (default 1; a positive number)', () => {
    expect(parseTimeScale({})).toBe(1);
    expect(parseTimeScale({ INLET_TIME_SCALE: '0.001' })).toBe(0.001);
    expect(() => parseTimeScale({ INLET_TIME_SCALE: '0' })).toThrow(/INLET_TIME_SCALE/);
    expect(() => parseTimeScale({ INLET_TIME_SCALE: 'fast' })).toThrow(/INLET_TIME_SCALE/);
  });

  it('make one stable msg_ id per consumer and transition', () => {
    const id = messageIdFor('app', 'tr_1');
    expect(id).toMatch(/^msg_[0-9A-Za-z]{27}$/);
    expect(messageIdFor('app', 'tr_1')).toBe(id);
    expect(messageIdFor('other', 'tr_1')).not.toBe(id);
  });

  it('make the ids they always made (stored ids: replay and retries find their messages by them)', () => {
    expect(messageIdFor('app', 'tr_1')).toBe('msg_Ut83Qh1t9MuMIup1DtUHxO4G4mb');
    expect(messageIdFor('webhook-one', 'tr_AbCdEfGhIjKlMnOp')).toBe('msg_h2uekjk8oHX05BFyGZ4wvgSp1DM');
  });

  it('retry after the schedule with jitter, or a longer Retry-After, then dead', () => {
    const base = { retryDelaysMs: [1000, 5000], nowMs: 0, timeScale: 1 };
    const fail: AttemptResult = { outcome: 'retry', error: 'x', durationMs: 1 };
    expect(verdictFor(fail, { ...base, roundAttempts: 1, random: () => 0.5 })).toEqual({
      state: 'retry',
      nextAttemptAtMs: 1000,
    });
    expect(verdictFor(fail, { ...base, roundAttempts: 1, random: () => 0 })).toEqual({
      state: 'retry',
      nextAttemptAtMs: 800,
    });
    expect(
      verdictFor({ ...fail, retryAfterMs: 60_000 }, { ...base, roundAttempts: 2, random: () => 0.99 }),
    ).toEqual({ state: 'retry', nextAttemptAtMs: 60_000 });
    expect(verdictFor(fail, { ...base, roundAttempts: 3, random: () => 0.5 })).toEqual({ state: 'dead' });
    expect(verdictFor(fail, { ...base, timeScale: 0.01, roundAttempts: 2, random: () => 0.5 })).toEqual({
      state: 'retry',
      nextAttemptAtMs: 50,
    });
  });
});

type StoreFactory = () => Promise<{ store: Store; cleanup(): Promise<void> }>;

const probe = await postgresOrSkip('the runner tests on PostgreSQL');
let pgDatabase: Promise<TestDatabase> | undefined;
afterAll(async () => {
  if (pgDatabase !== undefined) await (await pgDatabase).drop();
});

const DIALECTS: [string, StoreFactory | undefined][] = [
  [
    'sqlite',
    async () => {
      const dir = await mkdtemp(join(tmpdir(), 'inlet-runner-'));
      const store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
      return {
        store,
        cleanup: async () => {
          await store.close();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  ],
  [
    'postgres',
    probe.ok
      ? async () => {
          pgDatabase ??= createTestDatabase(probe.adminUrl, 'inlet_test_runner');
          const url = await (await pgDatabase).freshSchema();
          const store = await openPostgresStore(url, { mode: 'serve', poolSize: 4 });
          return { store, cleanup: () => store.close() };
        }
      : undefined,
  ],
];

for (const [dialect, factory] of DIALECTS) {
  describe.skipIf(factory === undefined)(`runner on ${dialect}`, () => {
    let store: Store;
    let jobs: JobStore;
    let cleanup: () => Promise<void>;
    let log: FakeTransitionLog;
    let clock: FakeClock;
    const runners: Runner[] = [];

    function runner(over: Partial<ConstructorParameters<typeof Runner>[0]> = {}): Runner {
      const r = new Runner({ jobs, log, clock, random: () => 0.5, ...over });
      runners.push(r);
      return r;
    }

    beforeEach(async () => {
      const fixture = await factory!();
      store = fixture.store;
      cleanup = () => fixture.cleanup();
      jobs = store.jobs;
      log = new FakeTransitionLog();
      clock = new FakeClock();
    });

    afterEach(async () => {
      for (const r of runners.splice(0)) await r.stop();
      await cleanup();
    });

    it('starts a new consumer at the end of the log and delivers what comes after', async () => {
      log.append('p0', 'prediction.completed');
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(d));
      await r.idle();
      expect(d.seen).toHaveLength(0);
      const t = log.append('p1', 'prediction.started');
      log.append('p1', 'prediction.completed');
      await r.idle();
      expect(d.seen.map((m) => [m.objectId, m.type])).toEqual([
        ['p1', 'prediction.started'],
        ['p1', 'prediction.completed'],
      ]);
      const first = d.seen[0]!;
      expect(first.id).toBe(messageIdFor('app', t.id));
      expect(first.data).toMatchObject({ id: 'p1', status: 'processing', kind: 'prediction' });
      const stored = await jobs.getMessage(first.id);
      expect(stored).toMatchObject({ state: 'delivered', attempts: 1, lastStatus: 200 });
      expect(stored?.attemptLog).toHaveLength(1);
    });

    it('reads the log once per pass for consumers at the same position, and no transition again to attempt it', async () => {
      const counted = { list: 0, get: 0 };
      const listTransitions = log.listTransitions.bind(log);
      const getTransition = log.getTransition.bind(log);
      log.listTransitions = (query) => {
        counted.list++;
        return listTransitions(query);
      };
      log.getTransition = (id) => {
        counted.get++;
        return getTransition(id);
      };
      const one = new ScriptedDeliverer(['delivered']);
      const two = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(one, { maxInFlight: 50 }));
      r.add(consumer(two, { name: 'other', maxInFlight: 50 }));
      await r.idle();
      for (let i = 0; i < 30; i++) log.append(`p${i}`, 'prediction.completed');
      counted.list = 0;
      await r.runOnce();
      expect(counted.list).toBe(1);
      expect(one.seen).toHaveLength(30);
      expect(two.seen).toHaveLength(30);
      expect(counted.get).toBe(0);
    });

    it("keeps fanned-out transitions by their bodies' size: large ones are read again, and every message goes out whole", async () => {
      let reads = 0;
      const getTransition = log.getTransition.bind(log);
      log.getTransition = (id) => {
        reads++;
        return getTransition(id);
      };
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(d, { maxInFlight: 40 }));
      await r.idle();
      const logs = 'x'.repeat(1024 * 1024);
      for (let i = 0; i < 40; i++) {
        log.append(`p${i}`, 'prediction.completed', {
          body: Buffer.from(JSON.stringify({ id: `p${i}`, status: 'succeeded', logs })),
        });
      }
      await r.idle();
      expect(d.seen).toHaveLength(40);
      for (const m of d.seen) expect(m.data).toMatchObject({ id: m.objectId, logs });
      // 40 MiB of bodies fanned out, 16 MiB kept: the older ones are read again for their attempts.
      expect(reads).toBeGreaterThan(0);
      expect(reads).toBeLessThan(40);
    });

    it('while ingest is busy, a pass fans out only enough to fill the slots; the rest waits in the log', async () => {
      let busy = false;
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner({ busy: () => busy });
      r.add(consumer(d, { maxInFlight: 3 }));
      await r.idle();
      for (let i = 0; i < 50; i++) log.append(`p${i}`, 'prediction.completed');
      busy = true;
      expect(await r.runOnce()).toBe(3);
      // 2 × maxInFlight transitions became messages; the consumer's position is there, not at the end.
      expect((await jobs.getConsumer('app'))?.position).toBe(log.rows[0]!.seq - 1 + 6);
      // Busy: the outcomes did not refill the slots either (the next, deferred pass does).
      expect(d.seen).toHaveLength(3);
      expect((await jobs.consumerStats('app')).pending).toBe(3);
      expect(await jobs.consumerCounts('app')).toEqual({ pending: 3, dead: 0 });
      busy = false;
      await r.idle();
      expect(d.seen).toHaveLength(50);
      expect((await jobs.getConsumer('app'))?.position).toBe(log.rows.at(-1)!.seq);
    });

    it('refills the slots that outcomes free in the same write as the outcomes', async () => {
      let claims = 0;
      const counted = jobsWith(jobs, {
        claim: (...args) => {
          claims++;
          return jobs.claim(...args);
        },
      });
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner({ jobs: counted });
      r.add(consumer(d, { maxInFlight: 2 }));
      await r.idle();
      for (let i = 0; i < 10; i++) log.append(`p${i}`, 'prediction.completed');
      claims = 0;
      expect(await r.runOnce()).toBe(2);
      expect(d.seen.map((m) => m.objectId)).toEqual(Array.from({ length: 10 }, (_, i) => `p${i}`));
      expect(d.maxActive).toBe(2);
      // The pass claimed the first two; every later message came with a recorded outcome.
      expect(claims).toBe(1);
      expect(await jobs.consumerCounts('app')).toEqual({ pending: 0, dead: 0 });
    });

    it('a catch-up fan-out that finds ingest busy part way stops after a small batch', async () => {
      let asked = 0;
      let calmFor = Infinity;
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner({ busy: () => ++asked > calmFor, fanOutBatch: 10 });
      r.add(consumer(d, { maxInFlight: 3 }));
      await r.idle();
      for (let i = 0; i < 50; i++) log.append(`p${i}`, 'prediction.completed');
      asked = 0;
      calmFor = 1; // the first step finds ingest calm, the next ones busy
      await r.runOnce();
      // One full batch (10), then one busy batch (2 × maxInFlight), then the pass moved on.
      expect((await jobs.getConsumer('app'))?.position).toBe(log.rows[0]!.seq - 1 + 16);
      calmFor = Infinity;
      await r.idle();
      expect(d.seen).toHaveLength(50);
    });

    it('retries on the schedule, with the same id, and records every attempt', async () => {
      const d = new ScriptedDeliverer(['retry', 'retry', 'retry', 'delivered']);
      const r = runner();
      r.add(consumer(d, { retryDelaysMs: [1000, 2000, 3000, 4000] }));
      await r.idle();
      log.append('p1', 'prediction.completed');
      await r.idle();
      expect(d.seen).toHaveLength(1);
      const id = d.seen[0]!.id;
      let message = await jobs.getMessage(id);
      expect(message).toMatchObject({ state: 'pending', attempts: 1, nextAttemptAtMs: clock.nowMs + 1000 });
      // Not due yet: nothing happens.
      clock.advance(999);
      expect(await r.runOnce()).toBe(0);
      for (const wait of [1, 2000, 3000]) {
        clock.advance(wait);
        expect(await r.runOnce()).toBe(1);
      }
      expect(d.seen.map((m) => m.id)).toEqual([id, id, id, id]);
      expect(d.seen.map((m) => m.attempt)).toEqual([1, 2, 3, 4]);
      message = await jobs.getMessage(id);
      expect(message).toMatchObject({ state: 'delivered', attempts: 4, lastStatus: 200, lastError: null });
      expect(message?.attemptLog.map((a) => a.status)).toEqual([500, 500, 500, 200]);
      expect(message?.attemptLog[0]?.error).toBe('HTTP 500');
    });

    it('is dead after the last retry; a retry makes it pending with a new round', async () => {
      let up = false;
      const d = new ScriptedDeliverer(() =>
        up
          ? { outcome: 'delivered', status: 204, durationMs: 1 }
          : { outcome: 'retry', error: 'ECONNREFUSED', durationMs: 1 },
      );
      const r = runner();
      r.add(consumer(d, { retryDelaysMs: [10, 10] }));
      await r.idle();
      log.append('p1', 'prediction.completed');
      for (let i = 0; i < 3; i++) {
        await r.idle();
        clock.advance(100);
      }
      const id = d.seen[0]!.id;
      expect(await jobs.getMessage(id)).toMatchObject({ state: 'dead', attempts: 3 });
      expect(await r.runOnce()).toBe(0);
      expect(await jobs.retryMessage('msg_nope', clock.nowMs)).toBe('not_found');
      up = true;
      expect(await jobs.retryMessage(id, clock.nowMs)).toBe('retried');
      expect(await jobs.retryMessage(id, clock.nowMs)).toBe('not_dead');
      await r.idle();
      expect(await jobs.getMessage(id)).toMatchObject({ state: 'delivered', attempts: 4, lastStatus: 204 });
      expect((await jobs.consumerStats('app')).dead).toBe(0);
    });

    it('410 disables the consumer: later transitions wait, enable delivers them in order', async () => {
      let gone = true;
      const d = new ScriptedDeliverer(() =>
        gone
          ? { outcome: 'disable', status: 410, reason: 'HTTP 410 Gone', durationMs: 1 }
          : { outcome: 'delivered', status: 200, durationMs: 1 },
      );
      const r = runner();
      r.add(consumer(d));
      await r.idle();
      log.append('p1', 'prediction.started');
      await r.idle();
      expect(d.seen).toHaveLength(1);
      const consumerRow = await jobs.getConsumer('app');
      expect(consumerRow).toMatchObject({ enabled: false, disabledReason: 'HTTP 410 Gone' });
      log.append('p1', 'prediction.output');
      log.append('p2', 'prediction.started');
      log.append('p1', 'prediction.completed');
      await r.idle();
      expect(d.seen).toHaveLength(1);
      expect((await jobs.getConsumer('app'))?.position).toBe(consumerRow?.position);
      gone = false;
      expect(await jobs.setConsumerEnabled('app', { enabled: true, nowMs: clock.nowMs })).toBe(true);
      await r.idle();
      const p1 = d.seen.filter((m) => m.objectId === 'p1').map((m) => m.type);
      expect(p1).toEqual([
        'prediction.started',
        'prediction.started',
        'prediction.output',
        'prediction.completed',
      ]);
      expect(d.seen.filter((m) => m.objectId === 'p2')).toHaveLength(1);
      expect((await jobs.consumerStats('app')).pending).toBe(0);
    });

    it('attempts nothing after a 410 while the disable is still being recorded', async () => {
      // The 410's outcome is stored with the next flush of outcomes; a pass that runs before it lands
      // must not read the still-enabled row and start on later transitions.
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      let recording!: () => void;
      const recordingStarted = new Promise<void>((resolve) => (recording = resolve));
      const heldJobs = jobsWith(jobs, {
        complete: async (...args) => {
          recording();
          await held;
          return jobs.complete(...args);
        },
      });
      const d = new ScriptedDeliverer(['disable', 'delivered']);
      const r = runner({ jobs: heldJobs });
      r.add(consumer(d));
      await r.idle();
      log.append('p1', 'prediction.started');
      const first = r.runOnce();
      await recordingStarted;
      log.append('p2', 'prediction.started');
      log.append('p3', 'prediction.started');
      const second = r.runOnce();
      // start() registers (reading the still-enabled row) after the pass asked for before it.
      await r.start();
      expect(d.seen.map((m) => m.objectId)).toEqual(['p1']);
      release();
      await Promise.all([first, second]);
      expect(await jobs.getConsumer('app')).toMatchObject({ enabled: false });
      await r.idle();
      expect(d.seen.map((m) => m.objectId)).toEqual(['p1']);
      await jobs.setConsumerEnabled('app', { enabled: true, nowMs: clock.nowMs });
      await r.idle();
      expect(d.seen.map((m) => m.objectId)).toEqual(['p1', 'p1', 'p2', 'p3']);
    });

    it('enable --from now skips what waited', async () => {
      const d = new ScriptedDeliverer(['disable', 'delivered']);
      const r = runner();
      r.add(consumer(d));
      await r.idle();
      log.append('p1', 'prediction.started');
      await r.idle();
      log.append('p2', 'prediction.started');
      await r.idle();
      const head = await log.lastTransitionSeq();
      await jobs.setConsumerEnabled('app', { enabled: true, position: head, nowMs: clock.nowMs });
      log.append('p3', 'prediction.started');
      await r.idle();
      expect(d.seen.map((m) => m.objectId)).toEqual(['p1', 'p3']);
    });

    it('holds later messages of an object until earlier ones are done; other objects go on', async () => {
      const d = new ScriptedDeliverer((m) =>
        m.objectId === 'p1' && m.type === 'prediction.started'
          ? { outcome: 'retry', error: 'HTTP 503', status: 503, durationMs: 1 }
          : { outcome: 'delivered', status: 200, durationMs: 1 },
      );
      const r = runner();
      r.add(consumer(d, { retryDelaysMs: [1000] }));
      await r.idle();
      log.append('p1', 'prediction.started');
      log.append('p1', 'prediction.completed');
      log.append('p2', 'prediction.started');
      await r.idle();
      expect(d.seen.map((m) => `${m.objectId} ${m.type}`)).toEqual([
        'p1 prediction.started',
        'p2 prediction.started',
      ]);
      clock.advance(5000);
      await r.idle();
      // The first is dead now: the second goes.
      expect(d.seen.map((m) => `${m.objectId} ${m.type}`).slice(2)).toEqual([
        'p1 prediction.started',
        'p1 prediction.completed',
      ]);
    });

    it('unordered consumers send every due message; maxInFlight bounds attempts at once', async () => {
      const d = new ScriptedDeliverer(['delivered']);
      let release!: () => void;
      d.gate = new Promise((resolve) => (release = resolve));
      const r = runner();
      r.add(consumer(d, { ordered: false, maxInFlight: 3 }));
      await r.idle();
      for (let i = 0; i < 5; i++) log.append('p1', 'prediction.logs');
      const pass = r.runOnce();
      // Three attempts out at once and held there (no fixed sleep: a loaded PostgreSQL took over 50 ms
      // for the pass); `maxActive` below checks none more ever went out together.
      await waitUntil(() => d.active >= 3, 10_000);
      expect(d.active).toBe(3);
      release();
      await pass;
      await r.idle();
      expect(d.seen).toHaveLength(5);
      expect(d.maxActive).toBe(3);
    });

    it('filters by type and model', async () => {
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(d, { events: ['prediction.completed'], models: ['acme/*'] }));
      await r.idle();
      log.append('p1', 'prediction.started');
      log.append('p1', 'prediction.completed');
      log.append('p2', 'prediction.completed', { model: 'other/thing' });
      log.append('p3', 'training.completed');
      await r.idle();
      expect(d.seen.map((m) => m.objectId)).toEqual(['p1']);
    });

    it('takes over a message whose lease expired', async () => {
      const hung = new ScriptedDeliverer(['delivered']);
      hung.gate = new Promise(() => undefined);
      const crashed = runner({ owner: 'crashed', stopGraceMs: 0 });
      crashed.add(consumer(hung));
      await crashed.idle();
      log.append('p1', 'prediction.completed');
      void crashed.runOnce();
      await waitUntil(() => hung.seen.length === 1);
      const id = hung.seen[0]!.id;
      expect((await jobs.getMessage(id))?.leaseOwner).toBe('crashed');
      const s = new ScriptedDeliverer(['delivered']);
      const survivor = runner({ owner: 'survivor' });
      survivor.add(consumer(s));
      // Within the lease nobody else attempts it.
      expect(await survivor.runOnce()).toBe(0);
      clock.advance(10_000 + 30_000 + 1);
      expect(await survivor.runOnce()).toBe(1);
      expect(s.seen.map((m) => m.id)).toEqual([id]);
      expect(await jobs.getMessage(id)).toMatchObject({ state: 'delivered', leaseOwner: null });
    });

    it('stop() aborts attempts in flight and gives their leases back', async () => {
      const d = new ScriptedDeliverer(['delivered']);
      d.gate = new Promise(() => undefined);
      const r = runner({ stopGraceMs: 10 });
      r.add(consumer(d));
      await r.start();
      log.append('p1', 'prediction.completed');
      r.wake();
      await waitUntil(() => d.seen.length === 1);
      await r.stop();
      const message = await jobs.getMessage(d.seen[0]!.id);
      expect(message).toMatchObject({ state: 'pending', attempts: 0, leaseOwner: null });
      expect(message?.attemptLog).toHaveLength(0);
    });

    it('replay sends matching transitions again as the same messages', async () => {
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(d));
      await r.idle();
      const t = log.append('p1', 'prediction.completed');
      await r.idle();
      const id = messageIdFor('app', t.id);
      expect(
        await jobs.requeue(
          'app',
          [
            {
              id,
              transitionSeq: t.seq,
              transitionId: t.id,
              objectId: 'p1',
              type: t.type,
              recordedAtMs: t.recordedAtMs,
            },
          ],
          clock.nowMs,
        ),
      ).toBe(1);
      expect(await jobs.getMessage(id)).toMatchObject({ state: 'pending', attempts: 1 });
      await r.idle();
      expect(d.seen.map((m) => m.id)).toEqual([id, id]);
      expect(await jobs.getMessage(id)).toMatchObject({ state: 'delivered', attempts: 2 });
    });

    it('lists messages newest first with keyset pages and filters', async () => {
      const d = new ScriptedDeliverer(['delivered']);
      const r = runner();
      r.add(consumer(d));
      await r.idle();
      for (let i = 0; i < 5; i++) log.append(`p${i}`, 'prediction.completed');
      await r.idle();
      const first = await jobs.listMessages({ consumer: 'app', limit: 2 });
      expect(first.items.map((m) => m.objectId)).toEqual(['p4', 'p3']);
      expect(first.hasMore).toBe(true);
      const second = await jobs.listMessages({ consumer: 'app', limit: 10, after: first.items[1]!.seq });
      expect(second.items.map((m) => m.objectId)).toEqual(['p2', 'p1', 'p0']);
      expect((await jobs.listMessages({ objectId: 'p2', limit: 10 })).items).toHaveLength(1);
      expect((await jobs.listMessages({ state: 'dead', limit: 10 })).items).toHaveLength(0);
    });

    it('reports pending, dead and lag per consumer', async () => {
      const d = new ScriptedDeliverer(['retry']);
      const r = runner();
      r.add(consumer(d, { retryDelaysMs: [1000] }));
      await r.idle();
      expect(await r.consumerGauges()).toEqual([{ name: 'app', pending: 0, dead: 0, lagSeconds: 0 }]);
      const t = log.append('p1', 'prediction.completed');
      clock.nowMs = t.recordedAtMs + 5000;
      await r.idle();
      expect(await r.consumerGauges()).toEqual([{ name: 'app', pending: 1, dead: 0, lagSeconds: 5 }]);
      clock.advance(5000);
      await r.idle();
      expect(await r.consumerGauges()).toEqual([{ name: 'app', pending: 0, dead: 1, lagSeconds: 0 }]);
    });

    it('keeps a generated secret once, and a configured one replaces it', async () => {
      let n = 0;
      const generateSecret = () => `whsec_generated${++n}`;
      const r = runner();
      r.add(consumer(new ScriptedDeliverer(['delivered']), { generateSecret }));
      await r.idle();
      expect((await jobs.getConsumer('app'))?.secret).toBe('whsec_generated1');
      const again = runner();
      again.add(consumer(new ScriptedDeliverer(['delivered']), { generateSecret }));
      await again.idle();
      expect((await jobs.getConsumer('app'))?.secret).toBe('whsec_generated1');
      const configured = runner();
      configured.add(consumer(new ScriptedDeliverer(['delivered']), { secret: 'whsec_configured' }));
      await configured.idle();
      expect((await jobs.getConsumer('app'))?.secret).toBe('whsec_configured');
    });
  });
}

async function waitUntil(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
