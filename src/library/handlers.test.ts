import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Runner } from '../jobs/runner.js';
import { openSqliteStore } from '../store/sqlite/sqlite-store.js';
import type { TransitionLog, TransitionRecord, TransitionType } from '../store/transition-types.js';
import type { Store } from '../store/types.js';
import { type HandlerMessage, handlerConsumer } from './handlers.js';

/** The log as the runner reads it, in memory: the handler side does not depend on how ingest writes it. */
class MemoryLog implements TransitionLog {
  readonly rows: TransitionRecord[] = [];
  append(objectId: string, type: TransitionType, model = 'acme/painter'): void {
    const seq = this.rows.length + 1;
    const status = type.endsWith('.completed') ? 'succeeded' : 'processing';
    this.rows.push({
      seq,
      id: `tr_${seq}`,
      type,
      objectId,
      kind: 'prediction',
      model,
      status,
      eventKey: `evt_${seq}`,
      recordedAtMs: Date.parse('2026-12-01T00:00:00Z') + seq,
      eventCount: seq,
      firstReceivedAtMs: 0,
      lastReceivedAtMs: seq,
      body: Buffer.from(JSON.stringify({ id: objectId, status, model })),
    });
  }
  async listTransitions(q: { afterSeq: number; limit: number }) {
    return this.rows.filter((r) => r.seq > q.afterSeq).slice(0, q.limit);
  }
  async lastTransitionSeq() {
    return this.rows.at(-1)?.seq ?? 0;
  }
  async getTransition(id: string) {
    return this.rows.find((r) => r.id === id);
  }
}

let store: Store | undefined;
let dir: string | undefined;
afterEach(async () => {
  await store?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  store = undefined;
});

async function runnerWith(log: MemoryLog): Promise<Runner> {
  dir = await mkdtemp(join(tmpdir(), 'inlet-handlers-'));
  store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
  return new Runner({ jobs: store.jobs, log });
}

describe('handlerConsumer', () => {
  it('makes a handler consumer with the destination defaults', () => {
    const c = handlerConsumer('prediction.completed', () => undefined);
    expect(c).toMatchObject({
      name: 'handler:prediction.completed',
      kind: 'handler',
      events: ['prediction.completed'],
      ordered: true,
      maxInFlight: 10,
    });
    expect(c.retryDelaysMs).toHaveLength(10);
    expect(handlerConsumer(['prediction.*', 'training.*'], () => 1, { name: 'thumbs' }).name).toBe(
      'handler:thumbs',
    );
  });

  it('refuses bad patterns, names and models', () => {
    expect(() => handlerConsumer('prediction.done!', () => 1)).toThrow(/not a transition type or pattern/);
    expect(() => handlerConsumer('*', () => 1, { name: 'no spaces' })).toThrow(/name/);
    expect(() => handlerConsumer('*', () => 1, { models: ['nope'] })).toThrow(/owner\/name/);
    expect(() => handlerConsumer('*', 'x' as never)).toThrow(/function/);
  });
});

describe('handlers on the runner', () => {
  it('get {id, type, timestamp, data} once per matching transition', async () => {
    const log = new MemoryLog();
    const runner = await runnerWith(log);
    const seen: HandlerMessage[] = [];
    runner.add(handlerConsumer('prediction.completed', (m) => void seen.push(m), { models: ['acme/*'] }));
    await runner.start();
    log.append('p1', 'prediction.started');
    log.append('p1', 'prediction.completed');
    log.append('p2', 'prediction.completed', 'other/model');
    await runner.idle();
    await runner.idle();
    await runner.stop();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      type: 'prediction.completed',
      timestamp: '2026-12-01T00:00:00.002Z',
      data: { id: 'p1', status: 'succeeded', kind: 'prediction', event_count: 2, input: null },
    });
    expect(seen[0]!.id).toMatch(/^msg_/);
  });

  it('retry a handler that throws, with the same id, until it returns', async () => {
    const log = new MemoryLog();
    const runner = await runnerWith(log);
    const calls: { id: string; attempt: number }[] = [];
    runner.add(
      handlerConsumer(
        '*',
        (m, context) => {
          calls.push({ id: m.id, attempt: context.attempt });
          if (calls.length < 3) throw new Error(`not yet (${calls.length})`);
        },
        { retryDelaysMs: [0, 0, 0] },
      ),
    );
    await runner.start();
    log.append('p1', 'prediction.completed');
    for (let i = 0; i < 5; i++) await runner.idle();
    await runner.stop();
    expect(calls.map((c) => c.attempt)).toEqual([1, 2, 3]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(1);
    const [message] = (await store!.jobs.listMessages({ consumer: 'handler:*', limit: 10 })).items;
    expect(message).toMatchObject({ state: 'delivered', attempts: 3 });
  });
});
