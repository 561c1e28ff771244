/**
 * Behaviour every Store must show, tested only through the `Store` interface so the same suite runs
 * against each dialect: `runStoreContract('sqlite', createStore)` from a dialect's own test file.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ReplicateObject } from '../replicate/types.js';
import { StoreUnavailableError } from './errors.js';
import type { IncomingEvent, NewRejection, ObjectSummaryRecord, Scheme, Store } from './types.js';

export interface StoreFixture {
  store: Store;
  /** Closes what the fixture opened and removes its data. */
  cleanup(): Promise<void>;
}

const T0 = Date.UTC(2026, 10, 27, 13, 38, 7, 123);
const T0_SEC = Math.floor(T0 / 1000);

interface EventOptions {
  receivedAtMs?: number;
  webhookTimestampSec?: number | null;
  headers?: Record<string, string>;
  body?: Buffer;
  scheme?: Scheme;
}

export function makeEvent(key: string, object: ReplicateObject, options: EventOptions = {}): IncomingEvent {
  const receivedAtMs = options.receivedAtMs ?? T0;
  return {
    key,
    scheme: options.scheme ?? 'standard',
    receivedAtMs,
    webhookTimestampSec:
      options.webhookTimestampSec === undefined
        ? Math.floor(receivedAtMs / 1000)
        : options.webhookTimestampSec,
    headers: options.headers ?? { 'content-type': 'application/json', 'webhook-id': key },
    body: options.body ?? Buffer.from(JSON.stringify(object)),
    object,
  };
}

function prediction(id: string, status: string, extra: Partial<ReplicateObject> = {}): ReplicateObject {
  return { id, status, model: 'acme/painter', version: 'v1', input: { prompt: 'a cat' }, ...extra };
}

function rejection(n: number, bodyBytes = 10, over: Partial<NewRejection> = {}): NewRejection {
  return {
    receivedAtMs: T0 + n,
    code: 'invalid_signature',
    message: `No signature matched (${n})`,
    remoteAddress: '192.0.2.7',
    headers: { 'webhook-signature': '[redacted]', 'x-n': String(n) },
    body: Buffer.alloc(bodyBytes, n % 256),
    ...over,
  };
}

const NO_LIMITS = { maxRows: 10_000, maxBodyBytes: 256 * 1024 * 1024 };

export function runStoreContract(name: string, createStore: () => Promise<StoreFixture>): void {
  describe(`Store contract: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await createStore();
      store = fixture.store;
    });

    afterEach(async () => {
      await fixture.store.close();
      await fixture.cleanup();
    });

    async function commitOne(event: IncomingEvent) {
      const [outcome] = await store.commitEvents([event]);
      return outcome!;
    }

    async function listAll(query: Omit<Parameters<Store['listPredictions']>[0], 'limit'> = {}) {
      return (await store.listPredictions({ limit: 200, ...query })).items;
    }

    describe('identity', () => {
      it('names its dialect, location and capabilities', () => {
        expect(store.dialect).toMatch(/\S/);
        expect(store.location).toMatch(/\S/);
        expect(store.capabilities.maxConcurrentCommits).toBeGreaterThanOrEqual(1);
        expect(typeof store.capabilities.multiInstance).toBe('boolean');
      });
    });

    describe('commitEvents', () => {
      it('returns nothing for an empty batch', async () => {
        expect(await store.commitEvents([])).toEqual([]);
      });

      it('stores a first event and folds it into a new object', async () => {
        const object = prediction('p1', 'starting', {
          logs: '',
          output: null,
          created_at: '2026-11-27T13:38:00Z',
        });
        const event = makeEvent('msg_1', object, { receivedAtMs: T0 });
        expect(await commitOne(event)).toEqual({ duplicate: false, applied: true, conflict: false });

        const record = await store.getPrediction('p1');
        expect(record).toEqual({
          id: 'p1',
          kind: 'prediction',
          status: 'starting',
          model: 'acme/painter',
          eventCount: 1,
          conflictCount: 0,
          firstReceivedAtMs: T0,
          lastReceivedAtMs: T0,
          summary: {
            id: 'p1',
            status: 'starting',
            model: 'acme/painter',
            version: 'v1',
            created_at: '2026-11-27T13:38:00Z',
          },
          object,
          winningEventKey: 'msg_1',
        });
      });

      it('keeps the body byte-exact, invalid UTF-8 and formatting included', async () => {
        const body = Buffer.concat([
          Buffer.from('{ "status" : "starting",\n  "id":"p1", "note":"'),
          Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0x80, 0x7f]),
          Buffer.from('", "n": 1.50 }\r\n'),
        ]);
        const object = JSON.parse(body.toString('utf8')) as ReplicateObject;
        await commitOne(makeEvent('msg_bytes', object, { body }));

        const stored = await store.getEvent('msg_bytes');
        expect(Buffer.isBuffer(stored!.body)).toBe(true);
        expect(stored!.body.equals(body)).toBe(true);
        expect((await store.getPrediction('p1'))!.object).toEqual(object);
      });

      it('keeps the headers and event fields', async () => {
        const headers = {
          'content-type': 'application/json; charset=utf-8',
          'webhook-id': 'msg_h',
          'webhook-signature': '[redacted]',
          'x-empty': '',
          'x-unicode': 'café ☕ "quoted" \\ back',
        };
        await commitOne(
          makeEvent('msg_h', prediction('p1', 'processing'), {
            headers,
            scheme: 'hex',
            webhookTimestampSec: 1234,
          }),
        );
        await commitOne(
          makeEvent('sha256:abc', prediction('p1', 'succeeded'), {
            webhookTimestampSec: null,
            scheme: 'unsigned',
          }),
        );

        const first = await store.getEvent('msg_h');
        expect(first).toMatchObject({
          key: 'msg_h',
          objectId: 'p1',
          receivedAtMs: T0,
          webhookTimestampSec: 1234,
          status: 'processing',
          scheme: 'hex',
          duplicates: 0,
          conflict: false,
          headers,
        });
        expect(Number.isInteger(first!.seq)).toBe(true);
        const second = await store.getEvent('sha256:abc');
        expect(second).toMatchObject({ webhookTimestampSec: null, scheme: 'unsigned', status: 'succeeded' });
        expect(second!.seq).toBeGreaterThan(first!.seq);
      });

      it('dedupes a key across batches: only the duplicate counter moves', async () => {
        const event = makeEvent('msg_1', prediction('p1', 'starting'), { receivedAtMs: T0 });
        await commitOne(event);
        const again = { ...event, receivedAtMs: T0 + 60_000 };
        expect(await commitOne(again)).toEqual({ duplicate: true, applied: false, conflict: false });
        expect(await commitOne(again)).toEqual({ duplicate: true, applied: false, conflict: false });

        expect((await store.getEvent('msg_1'))!.duplicates).toBe(2);
        const record = await store.getPrediction('p1');
        expect(record).toMatchObject({ eventCount: 1, firstReceivedAtMs: T0, lastReceivedAtMs: T0 });
        const events = await store.listEvents('p1', { limit: 50 });
        expect(events.items.map((e) => [e.key, e.duplicates])).toEqual([['msg_1', 2]]);
      });

      it('dedupes a key repeated inside one batch: the first is stored, the rest are duplicates', async () => {
        const first = makeEvent('msg_1', prediction('p1', 'processing', { logs: 'a' }));
        const second = makeEvent('msg_1', prediction('p1', 'succeeded'), { receivedAtMs: T0 + 5000 });
        const other = makeEvent('msg_2', prediction('p2', 'starting'));
        const outcomes = await store.commitEvents([first, second, other, first]);
        expect(outcomes).toEqual([
          { duplicate: false, applied: true, conflict: false },
          { duplicate: true, applied: false, conflict: false },
          { duplicate: false, applied: true, conflict: false },
          { duplicate: true, applied: false, conflict: false },
        ]);
        expect([0, 1, 3].filter((i) => !outcomes[i]!.duplicate)).toEqual([0]);
        const stored = await store.getEvent('msg_1');
        expect(stored!.body.equals(first.body)).toBe(true);
        expect(stored!.duplicates).toBe(2);
        expect(await store.getPrediction('p1')).toMatchObject({
          status: 'processing',
          eventCount: 1,
          lastReceivedAtMs: T0,
        });
      });

      it('a duplicate with a different body changes nothing but the counter', async () => {
        await commitOne(makeEvent('msg_1', prediction('p1', 'starting')));
        expect(await commitOne(makeEvent('msg_1', prediction('p1', 'failed')))).toMatchObject({
          duplicate: true,
        });
        expect(await store.getPrediction('p1')).toMatchObject({ status: 'starting', conflictCount: 0 });
      });

      it('ignores processing after succeeded, yet counts it', async () => {
        await commitOne(
          makeEvent('e1', prediction('p1', 'succeeded', { output: ['x'] }), { receivedAtMs: T0 }),
        );
        const late = makeEvent('e2', prediction('p1', 'processing'), { receivedAtMs: T0 + 1000 });
        expect(await commitOne(late)).toEqual({ duplicate: false, applied: false, conflict: false });
        expect(await store.getPrediction('p1')).toMatchObject({
          status: 'succeeded',
          winningEventKey: 'e1',
          eventCount: 2,
          lastReceivedAtMs: T0 + 1000,
        });
        expect((await store.getEvent('e2'))!.conflict).toBe(false);
      });

      it('ignores starting after processing', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'processing'), { receivedAtMs: T0 }));
        expect(
          await commitOne(makeEvent('e2', prediction('p1', 'starting'), { receivedAtMs: T0 + 5000 })),
        ).toMatchObject({ applied: false });
        expect((await store.getPrediction('p1'))!.status).toBe('processing');
      });

      it('applies progress at equal rank and ignores shorter logs or older timestamps', async () => {
        await commitOne(
          makeEvent('e1', prediction('p1', 'processing', { logs: 'abc' }), { webhookTimestampSec: T0_SEC }),
        );
        expect(
          await commitOne(
            makeEvent('e2', prediction('p1', 'processing', { logs: 'ab' }), {
              webhookTimestampSec: T0_SEC + 1,
            }),
          ),
        ).toMatchObject({ applied: false });
        expect(
          await commitOne(
            makeEvent('e3', prediction('p1', 'processing', { logs: 'abcdef' }), {
              webhookTimestampSec: T0_SEC - 1,
            }),
          ),
        ).toMatchObject({ applied: false });
        expect(
          await commitOne(
            makeEvent('e4', prediction('p1', 'processing', { logs: 'abcd' }), {
              webhookTimestampSec: T0_SEC,
            }),
          ),
        ).toMatchObject({ applied: true });
        const record = await store.getPrediction('p1');
        expect(record).toMatchObject({ winningEventKey: 'e4', eventCount: 4 });
        expect(record!.object.logs).toBe('abcd');
      });

      it('uses the receive time in whole seconds when there is no webhook timestamp', async () => {
        await commitOne(
          makeEvent('e1', prediction('p1', 'processing', { logs: 'a' }), {
            webhookTimestampSec: T0_SEC + 10,
          }),
        );
        const olderByReceipt = makeEvent('e2', prediction('p1', 'processing', { logs: 'ab' }), {
          webhookTimestampSec: null,
          receivedAtMs: (T0_SEC + 9) * 1000 + 999,
        });
        expect(await commitOne(olderByReceipt)).toMatchObject({ applied: false });
        const sameSecond = makeEvent('e3', prediction('p1', 'processing', { logs: 'abc' }), {
          webhookTimestampSec: null,
          receivedAtMs: (T0_SEC + 10) * 1000 + 999,
        });
        expect(await commitOne(sameSecond)).toMatchObject({ applied: true });
      });

      it('ignores fewer output items at equal rank', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'processing', { output: ['a', 'b'] })));
        expect(
          await commitOne(makeEvent('e2', prediction('p1', 'processing', { output: ['a'] }))),
        ).toMatchObject({
          applied: false,
        });
        expect(
          await commitOne(makeEvent('e3', prediction('p1', 'processing', { output: ['a', 'b', 'c'] }))),
        ).toMatchObject({
          applied: true,
        });
      });

      it('folds to exactly the winning body, never merging fields', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'processing', { extra: 1, logs: 'x' })));
        const done = { id: 'p1', status: 'succeeded', output: 'hi' };
        await commitOne(makeEvent('e2', done));
        const record = await store.getPrediction('p1');
        expect(record!.object).toEqual(done);
        expect(record!.summary).toEqual({ id: 'p1', status: 'succeeded' });
      });

      it('keeps the last known model for filtering when the winning body has none', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'processing', { model: 'acme/first' })));
        await commitOne(makeEvent('e2', { id: 'p1', status: 'succeeded' }));
        expect((await store.getPrediction('p1'))!.model).toBe('acme/first');
        await commitOne(makeEvent('e3', prediction('p2', 'starting', { model: 'acme/a' })));
        await commitOne(makeEvent('e4', prediction('p2', 'processing', { model: 'acme/b' })));
        expect((await store.getPrediction('p2'))!.model).toBe('acme/b');
        await commitOne(makeEvent('e5', { id: 'p3', status: 'starting', model: 42 }));
        expect((await store.getPrediction('p3'))!.model).toBeNull();
      });

      it('flags a different terminal status as a conflict and never applies it', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'succeeded', { output: ['ok'] })));
        expect(await commitOne(makeEvent('e2', prediction('p1', 'failed', { error: 'boom' })))).toEqual({
          duplicate: false,
          applied: false,
          conflict: true,
        });
        expect(
          await commitOne(makeEvent('e3', prediction('p1', 'succeeded', { output: ['ok', 'more'] }))),
        ).toEqual({
          duplicate: false,
          applied: false,
          conflict: false,
        });
        expect(await commitOne(makeEvent('e2', prediction('p1', 'failed')))).toMatchObject({
          duplicate: true,
          conflict: false,
        });

        const record = await store.getPrediction('p1');
        expect(record).toMatchObject({
          status: 'succeeded',
          winningEventKey: 'e1',
          conflictCount: 1,
          eventCount: 3,
        });
        expect(record!.object.output).toEqual(['ok']);
        expect((await store.getEvent('e2'))!.conflict).toBe(true);
        expect((await store.getEvent('e3'))!.conflict).toBe(false);
        const events = await store.listEvents('p1', { limit: 10 });
        expect(events.items.map((e) => e.conflict)).toEqual([false, true, false]);
      });

      it('marks an object as a training once any event has training output, for good', async () => {
        await commitOne(makeEvent('e1', prediction('t1', 'starting', { output: null })));
        expect((await store.getPrediction('t1'))!.kind).toBe('prediction');
        await commitOne(
          makeEvent('e2', prediction('t1', 'succeeded', { output: { version: 'v9', weights: 'https://w' } })),
        );
        expect((await store.getPrediction('t1'))!.kind).toBe('training');
        await commitOne(makeEvent('e3', prediction('t1', 'failed', { output: null })));
        expect((await store.getPrediction('t1'))!.kind).toBe('training');

        await commitOne(makeEvent('e4', prediction('t2', 'succeeded', { output: null })));
        await commitOne(
          makeEvent('e5', prediction('t2', 'processing', { output: { version: 'v', weights: 'w' } })),
        );
        expect((await store.getPrediction('t2'))!.kind).toBe('training');
        expect((await listAll({ q: 't2' }))[0]!.kind).toBe('training');
      });

      it('knows a training that failed or was canceled by its urls.get, without any output', async () => {
        const urls = (id: string) => ({ get: `https://api.replicate.com/v1/trainings/${id}` });
        await commitOne(makeEvent('e1', prediction('t3', 'starting', { output: null, urls: urls('t3') })));
        expect((await store.getPrediction('t3'))!.kind).toBe('training');
        await commitOne(makeEvent('e2', prediction('t4', 'canceled', { output: null, urls: urls('t4') })));
        expect((await listAll({ q: 't4' }))[0]!.kind).toBe('training');
        const predictionUrls = { get: 'https://api.replicate.com/v1/predictions/p9' };
        await commitOne(makeEvent('e3', prediction('p9', 'failed', { output: null, urls: predictionUrls })));
        expect((await store.getPrediction('p9'))!.kind).toBe('prediction');
      });

      it('counts distinct events and tracks first and last receive times', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'starting'), { receivedAtMs: T0 }));
        await commitOne(makeEvent('e2', prediction('p1', 'processing'), { receivedAtMs: T0 + 10 }));
        await commitOne(makeEvent('e3', prediction('p1', 'starting'), { receivedAtMs: T0 + 20 }));
        await commitOne(makeEvent('e2', prediction('p1', 'processing'), { receivedAtMs: T0 + 30 }));
        expect(await store.getPrediction('p1')).toMatchObject({
          eventCount: 3,
          firstReceivedAtMs: T0,
          lastReceivedAtMs: T0 + 20,
        });
      });

      it('commits a batch of 200 events across many objects, in order', async () => {
        const events: IncomingEvent[] = [];
        for (let i = 0; i < 100; i++) {
          events.push(makeEvent(`s${i}`, prediction(`p${i}`, 'starting'), { receivedAtMs: T0 + i }));
          events.push(makeEvent(`d${i}`, prediction(`p${i}`, 'succeeded'), { receivedAtMs: T0 + i + 1 }));
        }
        const outcomes = await store.commitEvents(events);
        expect(outcomes).toHaveLength(200);
        expect(outcomes.every((o) => o.applied && !o.duplicate && !o.conflict)).toBe(true);
        const all = await listAll();
        expect(all).toHaveLength(100);
        expect(all.every((p) => p.status === 'succeeded' && p.eventCount === 2)).toBe(true);
      });
    });

    describe('listPredictions', () => {
      async function seed(): Promise<void> {
        const rows: [string, string, string, number][] = [
          ['pred_a', 'starting', 'acme/painter', T0 + 1000],
          ['pred_b', 'processing', 'acme/painter', T0 + 2000],
          ['pred_c', 'succeeded', 'acme/writer', T0 + 3000],
          ['pred_d', 'failed', 'other/painter-xl', T0 + 4000],
          ['PRED_E', 'canceled', 'Acme/Shouter', T0 + 5000],
        ];
        for (const [id, status, model, at] of rows) {
          await commitOne(
            makeEvent(`k_${id}`, prediction(id, status, { model, output: ['big'], logs: 'long' }), {
              receivedAtMs: at,
            }),
          );
        }
      }

      it('answers an empty page for an empty store', async () => {
        expect(await store.listPredictions({ limit: 10 })).toEqual({ items: [], hasMore: false });
        expect(await store.countPredictions()).toBe(0);
      });

      it('counts every stored object, whatever its state', async () => {
        await seed();
        expect(await store.countPredictions()).toBe((await listAll()).length);
      });

      it('lists summaries most recently updated first, without input, output or logs', async () => {
        await seed();
        const items = await listAll();
        expect(items.map((p) => p.id)).toEqual(['PRED_E', 'pred_d', 'pred_c', 'pred_b', 'pred_a']);
        const a = items.find((p) => p.id === 'pred_a')!;
        expect(a).toEqual<ObjectSummaryRecord>({
          id: 'pred_a',
          kind: 'prediction',
          status: 'starting',
          model: 'acme/painter',
          eventCount: 1,
          conflictCount: 0,
          firstReceivedAtMs: T0 + 1000,
          lastReceivedAtMs: T0 + 1000,
          summary: { id: 'pred_a', status: 'starting', model: 'acme/painter', version: 'v1' },
        });
      });

      it('moves an object to the top when a new (non-duplicate) event arrives', async () => {
        await seed();
        await commitOne(makeEvent('late', prediction('pred_a', 'processing'), { receivedAtMs: T0 + 9000 }));
        await commitOne(
          makeEvent('k_pred_b', prediction('pred_b', 'processing'), { receivedAtMs: T0 + 9999 }),
        );
        expect((await listAll()).map((p) => p.id).slice(0, 2)).toEqual(['pred_a', 'PRED_E']);
      });

      it('filters by one status or a list of statuses', async () => {
        await seed();
        expect((await listAll({ statuses: ['failed'] })).map((p) => p.id)).toEqual(['pred_d']);
        expect((await listAll({ statuses: ['starting', 'succeeded', 'nope'] })).map((p) => p.id)).toEqual([
          'pred_c',
          'pred_a',
        ]);
        expect(await listAll({ statuses: ['nope'] })).toEqual([]);
      });

      it('filters by exact model', async () => {
        await seed();
        expect((await listAll({ model: 'acme/painter' })).map((p) => p.id)).toEqual(['pred_b', 'pred_a']);
        expect(await listAll({ model: 'acme/paint' })).toEqual([]);
        expect(await listAll({ model: 'ACME/PAINTER' })).toEqual([]);
      });

      it('matches q as a case-insensitive substring of id or model', async () => {
        await seed();
        expect((await listAll({ q: 'PAINTER' })).map((p) => p.id)).toEqual(['pred_d', 'pred_b', 'pred_a']);
        expect((await listAll({ q: 'pred_e' })).map((p) => p.id)).toEqual(['PRED_E']);
        expect((await listAll({ q: 'shout' })).map((p) => p.id)).toEqual(['PRED_E']);
        expect((await listAll({ q: 'writer' })).map((p) => p.id)).toEqual(['pred_c']);
        expect(await listAll({ q: 'zebra' })).toEqual([]);
      });

      it('treats % _ and \\ in q literally', async () => {
        for (const id of ['p_1', 'px1', '100%', '1000', 'a\\b', 'ab']) {
          await commitOne(makeEvent(`k${id}`, { id, status: 'starting' }));
        }
        expect((await listAll({ q: '_' })).map((p) => p.id)).toEqual(['p_1']);
        expect((await listAll({ q: '%' })).map((p) => p.id)).toEqual(['100%']);
        expect((await listAll({ q: '0%' })).map((p) => p.id)).toEqual(['100%']);
        expect((await listAll({ q: '\\' })).map((p) => p.id)).toEqual(['a\\b']);
      });

      it('bounds last_received_at with since and until, both inclusive', async () => {
        await seed();
        const ids = async (sinceMs?: number, untilMs?: number) =>
          (await listAll({ sinceMs, untilMs })).map((p) => p.id);
        expect(await ids(T0 + 2000, T0 + 4000)).toEqual(['pred_d', 'pred_c', 'pred_b']);
        expect(await ids(T0 + 2001, T0 + 3999)).toEqual(['pred_c']);
        expect(await ids(T0 + 5000)).toEqual(['PRED_E']);
        expect(await ids(undefined, T0 + 1000)).toEqual(['pred_a']);
        expect(await ids(T0 + 5001)).toEqual([]);
      });

      it('combines filters', async () => {
        await seed();
        const items = await listAll({ statuses: ['processing', 'failed'], q: 'painter', sinceMs: T0 + 2000 });
        expect(items.map((p) => p.id)).toEqual(['pred_d', 'pred_b']);
      });

      it('pages with a keyset over 130 objects sharing timestamps, losing and repeating none', async () => {
        const events: IncomingEvent[] = [];
        for (let i = 0; i < 130; i++) {
          const id = `p-${String(i).padStart(3, '0')}`;
          // Three timestamps shared by many objects: the id breaks ties.
          events.push(
            makeEvent(`k${i}`, prediction(id, i % 2 === 0 ? 'starting' : 'succeeded'), {
              receivedAtMs: T0 + (i % 3),
            }),
          );
        }
        await store.commitEvents(events);

        for (const [limit, statuses] of [
          [7, undefined],
          [1, undefined],
          [65, undefined],
          [130, undefined],
          [10, ['succeeded']],
        ] as const) {
          const seen: ObjectSummaryRecord[] = [];
          let after: { lastReceivedAtMs: number; id: string } | undefined;
          for (let pages = 0; pages < 200; pages++) {
            const page = await store.listPredictions({ limit, after, statuses });
            expect(page.items.length).toBeLessThanOrEqual(limit);
            seen.push(...page.items);
            if (!page.hasMore) break;
            expect(page.items).toHaveLength(limit);
            const last = page.items.at(-1)!;
            after = { lastReceivedAtMs: last.lastReceivedAtMs, id: last.id };
          }
          const expected = statuses === undefined ? 130 : 65;
          expect(seen).toHaveLength(expected);
          expect(new Set(seen.map((p) => p.id)).size).toBe(expected);
          for (let i = 1; i < seen.length; i++) {
            const [prev, cur] = [seen[i - 1]!, seen[i]!];
            expect(
              prev.lastReceivedAtMs > cur.lastReceivedAtMs ||
                (prev.lastReceivedAtMs === cur.lastReceivedAtMs && prev.id > cur.id),
            ).toBe(true);
          }
        }
      });
    });

    describe('listEvents', () => {
      it('lists one object’s events in the order received, paging by seq', async () => {
        const keys: string[] = [];
        for (let i = 0; i < 12; i++) {
          const key = `evt_${String.fromCharCode(122 - i)}`; // keys sort opposite to arrival
          keys.push(key);
          await commitOne(
            makeEvent(key, prediction('p1', 'processing', { logs: 'x'.repeat(i) }), { receivedAtMs: T0 + i }),
          );
          await commitOne(makeEvent(`other_${i}`, prediction('p2', 'processing')));
        }
        await commitOne(makeEvent(keys[3]!, prediction('p1', 'processing')));

        const seen: string[] = [];
        let after: number | undefined;
        for (let pages = 0; pages < 20; pages++) {
          const page = await store.listEvents('p1', { limit: 5, after });
          seen.push(...page.items.map((e) => e.key));
          if (!page.hasMore) break;
          after = page.items.at(-1)!.seq;
        }
        expect(seen).toEqual(keys);

        const all = (await store.listEvents('p1', { limit: 50 })).items;
        expect(all[3]).toMatchObject({
          key: keys[3],
          duplicates: 1,
          objectId: 'p1',
          status: 'processing',
          scheme: 'standard',
        });
        expect(all.map((e) => e.receivedAtMs)).toEqual(keys.map((_, i) => T0 + i));
      });

      it('answers an empty page for an unknown object', async () => {
        expect(await store.listEvents('nope', { limit: 5 })).toEqual({ items: [], hasMore: false });
      });

      it('says hasMore false when the last page is exactly full', async () => {
        await store.commitEvents([0, 1, 2, 3].map((i) => makeEvent(`e${i}`, prediction('p1', 'processing'))));
        const first = await store.listEvents('p1', { limit: 2 });
        expect(first.hasMore).toBe(true);
        const second = await store.listEvents('p1', { limit: 2, after: first.items[1]!.seq });
        expect(second.items.map((e) => e.key)).toEqual(['e2', 'e3']);
        expect(second.hasMore).toBe(false);
      });
    });

    describe('lookups', () => {
      it('answers undefined for unknown ids and keys', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'starting')));
        expect(await store.getPrediction('p2')).toBeUndefined();
        expect(await store.getEvent('e2')).toBeUndefined();
      });
    });

    describe('rejections', () => {
      it('lists rejections newest first with every field', async () => {
        const rows = [
          rejection(1),
          rejection(2, 0),
          rejection(3, 5, { body: Buffer.from([0xff, 0x00, 0x7b]) }),
        ];
        await store.recordRejections(rows, NO_LIMITS);
        const page = await store.listRejections({ limit: 10 });
        expect(page.hasMore).toBe(false);
        expect(page.items.map((r) => r.receivedAtMs)).toEqual([T0 + 3, T0 + 2, T0 + 1]);
        const [newest, middle, oldest] = page.items;
        expect(newest!.body.equals(Buffer.from([0xff, 0x00, 0x7b]))).toBe(true);
        expect(middle!.body.length).toBe(0);
        expect(oldest).toMatchObject({
          code: 'invalid_signature',
          message: 'No signature matched (1)',
          remoteAddress: '192.0.2.7',
          headers: { 'webhook-signature': '[redacted]', 'x-n': '1' },
        });
        expect(oldest!.body.equals(rows[0]!.body)).toBe(true);
        const ids = page.items.map((r) => r.id);
        expect(new Set(ids).size).toBe(3);
        for (const id of ids) expect(id).toMatch(/\S/);
        expect(newest!.seq).toBeGreaterThan(middle!.seq);
      });

      it('pages newest first by seq', async () => {
        await store.recordRejections(
          [1, 2, 3, 4, 5].map((n) => rejection(n)),
          NO_LIMITS,
        );
        await store.recordRejections(
          [6, 7].map((n) => rejection(n)),
          NO_LIMITS,
        );
        const seen: number[] = [];
        let after: number | undefined;
        for (let pages = 0; pages < 10; pages++) {
          const page = await store.listRejections({ limit: 3, after });
          seen.push(...page.items.map((r) => r.receivedAtMs - T0));
          if (!page.hasMore) break;
          after = page.items.at(-1)!.seq;
        }
        expect(seen).toEqual([7, 6, 5, 4, 3, 2, 1]);
      });

      it('keeps only the newest maxRows', async () => {
        const limits = { maxRows: 5, maxBodyBytes: 1_000_000 };
        await store.recordRejections(
          [1, 2, 3, 4].map((n) => rejection(n)),
          limits,
        );
        await store.recordRejections(
          [5, 6, 7, 8].map((n) => rejection(n)),
          limits,
        );
        const kept = (await store.listRejections({ limit: 50 })).items.map((r) => r.receivedAtMs - T0);
        expect(kept).toEqual([8, 7, 6, 5, 4]);
        await store.recordRejections([rejection(9)], limits);
        expect((await store.listRejections({ limit: 50 })).items.map((r) => r.receivedAtMs - T0)).toEqual([
          9, 8, 7, 6, 5,
        ]);
      });

      it('keeps only the newest rows whose bodies fit maxBodyBytes', async () => {
        const limits = { maxRows: 100, maxBodyBytes: 35 };
        await store.recordRejections(
          [1, 2].map((n) => rejection(n, 10)),
          limits,
        );
        expect((await store.listRejections({ limit: 50 })).items).toHaveLength(2);
        await store.recordRejections(
          [3, 4, 5].map((n) => rejection(n, 10)),
          limits,
        );
        expect((await store.listRejections({ limit: 50 })).items.map((r) => r.receivedAtMs - T0)).toEqual([
          5, 4, 3,
        ]);
        await store.recordRejections([rejection(6, 15)], limits);
        expect((await store.listRejections({ limit: 50 })).items.map((r) => r.receivedAtMs - T0)).toEqual([
          6, 5, 4,
        ]);
        await store.recordRejections([rejection(7, 36)], limits);
        expect((await store.listRejections({ limit: 50 })).items).toEqual([]);
        await store.recordRejections([rejection(8, 35), rejection(9, 0)], limits);
        expect((await store.listRejections({ limit: 50 })).items.map((r) => r.receivedAtMs - T0)).toEqual([
          9, 8,
        ]);
      });

      it('never reuses a trimmed seq, so a cursor stays meaningful', async () => {
        const limits = { maxRows: 2, maxBodyBytes: 1000 };
        await store.recordRejections(
          [1, 2, 3].map((n) => rejection(n)),
          limits,
        );
        const before = (await store.listRejections({ limit: 10 })).items;
        await store.recordRejections(
          [4].map((n) => rejection(n)),
          { maxRows: 0, maxBodyBytes: 1000 },
        );
        expect((await store.listRejections({ limit: 10 })).items).toEqual([]);
        await store.recordRejections(
          [5].map((n) => rejection(n)),
          limits,
        );
        const after = (await store.listRejections({ limit: 10 })).items;
        expect(after[0]!.seq).toBeGreaterThan(before[0]!.seq);
      });

      it('ignores an empty batch', async () => {
        await store.recordRejections([], { maxRows: 0, maxBodyBytes: 0 });
        expect(await store.listRejections({ limit: 5 })).toEqual({ items: [], hasMore: false });
      });

      it('lists each body cut to its first 64 KiB with its whole size; getRejection has all of it', async () => {
        const large = Buffer.alloc(200 * 1024, 7);
        large[64 * 1024 - 1] = 1;
        large[64 * 1024] = 2;
        await store.recordRejections([rejection(1, 0, { body: large }), rejection(2, 5)], NO_LIMITS);
        const [small, cut] = (await store.listRejections({ limit: 10 })).items;
        expect(small!.bodyBytes).toBe(5);
        expect(small!.body.length).toBe(5);
        expect(cut!.bodyBytes).toBe(large.length);
        expect(cut!.body.equals(large.subarray(0, 64 * 1024))).toBe(true);

        const whole = await store.getRejection(cut!.id);
        expect(whole).toMatchObject({
          id: cut!.id,
          seq: cut!.seq,
          code: 'invalid_signature',
          bodyBytes: large.length,
        });
        expect(whole!.body.equals(large)).toBe(true);
        expect(await store.getRejection('rej_unknown')).toBeUndefined();
      });
    });

    describe('deliveries per minute', () => {
      it('counts accepted, duplicate and rejected deliveries by the minute they arrived', async () => {
        const minute0 = Math.floor(T0 / 60_000) * 60_000;
        const at = (minutes: number, ms = 0) => ({ receivedAtMs: minute0 + minutes * 60_000 + ms });
        await commitOne(makeEvent('d1', prediction('p1', 'starting'), at(0, 1)));
        await commitOne(makeEvent('d2', prediction('p1', 'processing'), at(0, 59_999)));
        // Repeats count in the minute of the delivery they repeat.
        await store.commitEvents([
          makeEvent('d2', prediction('p1', 'processing'), at(3)),
          makeEvent('d2', prediction('p1', 'processing'), at(3)),
        ]);
        await commitOne(makeEvent('d3', prediction('p2', 'succeeded'), at(2)));
        // A poll is not a delivery.
        await commitOne(makeEvent('poll:p2', prediction('p2', 'succeeded'), { ...at(2), scheme: 'poll' }));
        // Outside the window on both sides.
        await commitOne(makeEvent('d4', prediction('p3', 'starting'), at(-1, 59_999)));
        await commitOne(makeEvent('d5', prediction('p3', 'processing'), at(5)));
        await store.recordRejections(
          [
            rejection(0, 1, { receivedAtMs: minute0 + 30_000 }),
            rejection(1, 1, { receivedAtMs: minute0 + 4 * 60_000 + 59_999 }),
            rejection(2, 1, { receivedAtMs: minute0 + 4 * 60_000 }),
            rejection(3, 1, { receivedAtMs: minute0 + 5 * 60_000 }),
          ],
          NO_LIMITS,
        );
        expect(await store.deliveriesPerMinute(minute0, minute0 + 5 * 60_000)).toEqual([
          { minuteMs: minute0, accepted: 2, duplicate: 2, rejected: 1 },
          { minuteMs: minute0 + 2 * 60_000, accepted: 1, duplicate: 0, rejected: 0 },
          { minuteMs: minute0 + 4 * 60_000, accepted: 0, duplicate: 0, rejected: 2 },
        ]);
        expect(await store.deliveriesPerMinute(minute0 + 60_000, minute0 + 2 * 60_000)).toEqual([]);
      });
    });

    describe('transitions (CONTRACT §8)', () => {
      async function types(id?: string) {
        const rows = await store.transitions.listTransitions({
          afterSeq: 0,
          limit: 100,
          ...(id === undefined ? {} : { objectIds: [id] }),
        });
        return rows.map((t) => t.type);
      }

      it('appends one row per accepted change: started, logs, output, completed', async () => {
        expect(await store.transitions.lastTransitionSeq()).toBe(0);
        const t = (n: number) => ({ receivedAtMs: T0 + n * 1000 });
        await commitOne(makeEvent('e1', prediction('p1', 'starting'), t(0)));
        await commitOne(makeEvent('e2', prediction('p1', 'processing', { logs: 'step 1' }), t(1)));
        await commitOne(
          makeEvent('e3', prediction('p1', 'processing', { logs: 'step 1', output: ['a'] }), t(2)),
        );
        // The same content again changes nothing: no transition.
        await commitOne(
          makeEvent('e4', prediction('p1', 'processing', { logs: 'step 1', output: ['a'] }), t(3)),
        );
        // Same output length, different content: still an output change.
        await commitOne(
          makeEvent('e5', prediction('p1', 'processing', { logs: 'step 1', output: ['b'] }), t(4)),
        );
        await commitOne(
          makeEvent('e6', prediction('p1', 'succeeded', { logs: 'step 1', output: ['b'] }), t(5)),
        );
        expect(await types()).toEqual([
          'prediction.started',
          'prediction.logs',
          'prediction.output',
          'prediction.output',
          'prediction.completed',
        ]);
        const rows = await store.transitions.listTransitions({ afterSeq: 0, limit: 100 });
        const last = rows.at(-1)!;
        expect(last).toMatchObject({
          objectId: 'p1',
          kind: 'prediction',
          status: 'succeeded',
          eventKey: 'e6',
        });
        expect(last.eventCount).toBe(6);
        expect(JSON.parse(last.body.toString('utf8'))).toMatchObject({ status: 'succeeded', output: ['b'] });
        expect(last.id).toMatch(/^tr_/);
        expect(await store.transitions.getTransition(last.id)).toEqual(last);
        expect(await store.transitions.getTransition('tr_missing')).toBeUndefined();
        expect(await store.transitions.lastTransitionSeq()).toBe(last.seq);
        // Strictly increasing positions; paging after a seq.
        const seqs = rows.map((r) => r.seq);
        expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
        expect(new Set(seqs).size).toBe(seqs.length);
        const page = await store.transitions.listTransitions({ afterSeq: seqs[1]!, limit: 2 });
        expect(page.map((r) => r.seq)).toEqual(seqs.slice(2, 4));
      });

      it('appends nothing for duplicates, regressions, conflicts, or anything after completed', async () => {
        await commitOne(makeEvent('e1', prediction('p1', 'processing', { logs: 'x' })));
        await commitOne(makeEvent('e1', prediction('p1', 'processing', { logs: 'x' })));
        await commitOne(makeEvent('e2', prediction('p1', 'starting'), { receivedAtMs: T0 + 1000 }));
        await commitOne(
          makeEvent('e3', prediction('p1', 'failed', { logs: 'x' }), { receivedAtMs: T0 + 2000 }),
        );
        await commitOne(
          makeEvent('e4', prediction('p1', 'succeeded', { output: ['z'] }), { receivedAtMs: T0 + 3000 }),
        );
        await commitOne(
          makeEvent('e5', prediction('p1', 'processing', { logs: 'xyz' }), { receivedAtMs: T0 + 4000 }),
        );
        expect(await types()).toEqual(['prediction.logs', 'prediction.completed']);
      });

      it('folds a batch in order and names trainings by their kind', async () => {
        await store.commitEvents([
          makeEvent('e1', prediction('p1', 'starting')),
          makeEvent('e2', prediction('p2', 'succeeded', { output: ['u'] })),
          makeEvent('e3', prediction('p1', 'canceled'), { receivedAtMs: T0 + 1000 }),
          makeEvent('e4', prediction('t1', 'succeeded', { output: { version: 'v', weights: 'https://w' } })),
        ]);
        const rows = await store.transitions.listTransitions({ afterSeq: 0, limit: 100 });
        expect(rows.map((r) => [r.objectId, r.type])).toEqual([
          ['p1', 'prediction.started'],
          ['p2', 'prediction.completed'],
          ['p1', 'prediction.completed'],
          ['t1', 'training.completed'],
        ]);
        expect(await types('p1')).toEqual(['prediction.started', 'prediction.completed']);
        const windowed = await store.transitions.listTransitions({
          afterSeq: 0,
          limit: 100,
          sinceMs: rows[0]!.recordedAtMs,
          untilMs: rows[0]!.recordedAtMs,
        });
        expect(windowed).toHaveLength(4);
        expect(await store.transitions.listTransitions({ afterSeq: 0, limit: 10, objectIds: [] })).toEqual(
          [],
        );
      });
    });

    describe('lifecycle', () => {
      it('answers ping, closes idempotently, and is unavailable once closed', async () => {
        await expect(store.ping()).resolves.toBeUndefined();
        await store.close();
        await store.close();
        await expect(store.ping()).rejects.toBeInstanceOf(StoreUnavailableError);
        await expect(
          store.commitEvents([makeEvent('e1', prediction('p1', 'starting'))]),
        ).rejects.toBeInstanceOf(StoreUnavailableError);
      });
    });
  });
}
