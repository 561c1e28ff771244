import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseSse, type SseEvent } from '../cli/listen-command.js';
import { FakeTransitionLog } from '../jobs/fakes.test-suite.js';
import { openSqliteStore, type SqliteStore } from '../store/sqlite/sqlite-store.js';
import { registerApiRoutes } from './api-routes.js';
import { registerStreamRoutes } from './stream-routes.js';

const EXPIRY_MS = 7 * 86_400_000;

describe('live stream and listeners API', () => {
  let dir: string;
  let store: SqliteStore;
  let log: FakeTransitionLog;
  let app: FastifyInstance;
  let base: string;
  let nowMs: number;
  const wakers = new Set<() => void>();
  const aborts: AbortController[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inlet-stream-'));
    store = await openSqliteStore(join(dir, 'inlet.db'), { mode: 'serve' });
    log = new FakeTransitionLog();
    nowMs = 1_800_000_000_000;
    // undici may keep a spare connection that never sends a request; Node never counts it idle.
    app = Fastify({ forceCloseConnections: true });
    await app.register(
      async (scope) => {
        registerApiRoutes(scope, store);
        registerStreamRoutes(scope, {
          log,
          jobs: store.jobs,
          onTransitions: (wake) => {
            wakers.add(wake);
            return () => wakers.delete(wake);
          },
          listenExpiryMs: EXPIRY_MS,
          // Long: these tests move only by wake-ups, never by the fallback poll.
          pollIntervalMs: 60_000,
          now: () => nowMs,
        });
      },
      { prefix: '/api' },
    );
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });

  afterEach(async () => {
    for (const a of aborts) a.abort();
    await app.close();
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  const append = (objectId: string) => {
    const row = log.append(objectId, 'prediction.output');
    for (const wake of wakers) wake();
    return row;
  };

  /** Opens a stream; `next()` answers its events one by one. */
  async function open(query: string, headers: Record<string, string> = {}) {
    const controller = new AbortController();
    aborts.push(controller);
    const response = await fetch(`${base}/api/stream${query}`, { headers, signal: controller.signal });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const queue: SseEvent[] = [];
    return {
      async next(): Promise<SseEvent> {
        for (;;) {
          const ready = queue.shift();
          if (ready !== undefined) return ready;
          const { value, done } = await reader.read();
          if (done) throw new Error('the stream ended');
          const parsed = parseSse(text + decoder.decode(value, { stream: true }));
          text = parsed.rest;
          queue.push(...parsed.events);
        }
      },
      close: () => controller.abort(),
    };
  }

  it('starts at the end of the log, and after Last-Event-ID when given', async () => {
    const first = append('p1');
    append('p2');
    const now = await open('');
    append('p3');
    expect((await now.next()).data).toContain('"object_id":"p3"');
    const resumed = await open('', { 'last-event-id': first.id });
    expect(JSON.parse((await resumed.next()).data)).toMatchObject({ id: 'tr_2', object_id: 'p2' });
    expect(JSON.parse((await resumed.next()).data)).toMatchObject({ id: 'tr_3', object_id: 'p3' });
  });

  it('a named listener resumes from its acknowledged position, which only moves forward', async () => {
    append('p1');
    const stream = await open('?consumer=laptop');
    const t2 = append('p2');
    const t3 = append('p3');
    expect((await stream.next()).id).toBe(t2.id);
    stream.close();

    const ack = (id: string) =>
      fetch(`${base}/api/listeners/laptop/ack`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ last_event_id: id }),
      });
    expect(await (await ack(t2.id)).json()).toMatchObject({
      name: 'laptop',
      position: 2,
      behind: 1,
    });
    // A late acknowledgement of an earlier transition leaves the position where it is.
    expect(await (await ack('tr_1')).json()).toMatchObject({ position: 2 });

    const again = await open('?consumer=laptop');
    expect((await again.next()).id).toBe(t3.id);

    expect((await ack('tr_404')).status).toBe(400);
    const unknown = await fetch(`${base}/api/listeners/nobody/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ last_event_id: t3.id }),
    });
    expect(unknown.status).toBe(404);
    const bad = await fetch(`${base}/api/listeners/laptop/ack`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(bad.status).toBe(400);
  });

  it('filters by type and refuses a bad filter or name', async () => {
    const stream = await open('?events=prediction.completed');
    log.append('p1', 'prediction.output');
    const done = log.append('p1', 'prediction.completed');
    for (const wake of wakers) wake();
    const event = await stream.next();
    expect(event.id).toBe(done.id);
    expect(event.event).toBe('prediction.completed');
    expect((await fetch(`${base}/api/stream?events=nonsense`)).status).toBe(400);
    expect((await fetch(`${base}/api/stream?consumer=${encodeURIComponent('a b')}`)).status).toBe(400);
  });

  it(`drops a listener not seen for INLET_LISTEN_EXPIRY`, async () => {
    const stream = await open('?consumer=old');
    stream.close();
    await open('?consumer=recent').then((s) => s.close());
    const names = async () =>
      ((await (await fetch(`${base}/api/listeners`)).json()) as { data: { name: string }[] }).data.map(
        (l) => l.name,
      );
    expect((await names()).sort()).toEqual(['old', 'recent']);
    nowMs += EXPIRY_MS / 2;
    await open('?consumer=recent').then((s) => s.close());
    nowMs += EXPIRY_MS / 2 + 1;
    expect(await names()).toEqual(['recent']);
    expect(await store.jobs.getConsumer('listen:old')).toBeUndefined();
  });

  it('closing the app ends open streams cleanly', async () => {
    const stream = await open('');
    // The stream ends (rather than being cut, which would reject the read).
    await Promise.all([app.close(), expect(stream.next()).rejects.toThrow('the stream ended')]);
  });
});
