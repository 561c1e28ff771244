/**
 * The webhook and admin API in process (`inject()`), on a PostgreSQL store: the same checks as
 * webhook.test.ts makes on SQLite for accepting, deduping and folding.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import {
  createTestInlet,
  prediction,
  signedHeaders,
  type TestInlet,
  WEBHOOK_PATH,
  postWebhook,
} from './helpers.js';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from './pg-helpers.js';

const probe = await postgresOrSkip('the webhook tests on PostgreSQL');
const PATH = WEBHOOK_PATH;

describe.skipIf(!probe.ok)('POST /replicate-webhook on PostgreSQL', () => {
  let db: TestDatabase;
  let inlet: TestInlet | undefined;

  beforeAll(async () => {
    if (probe.ok) db = await createTestDatabase(probe.adminUrl, 'inlet_test_webhook');
  });

  afterAll(async () => {
    await db?.drop();
  });

  afterEach(async () => {
    await inlet?.close();
    inlet = undefined;
  });

  async function start(env: Record<string, string> = {}, url?: string): Promise<TestInlet> {
    const store = await openStore(url ?? (await db.freshSchema()), { mode: 'serve' });
    inlet = await createTestInlet(env, {}, store);
    return inlet;
  }

  const post = (body: string, headers: Record<string, string>) => postWebhook(inlet!, body, headers);

  async function api(url: string) {
    const res = await inlet!.app.inject({ url });
    return { status: res.statusCode, json: res.json() };
  }

  it('accepts a signed prediction once, then answers duplicate', async () => {
    await start();
    const body = JSON.stringify(prediction({ status: 'succeeded', output: ['a'] }));
    const headers = signedHeaders(body);
    expect(await post(body, headers)).toMatchObject({
      status: 200,
      json: { received: true, duplicate: false },
    });
    expect(await post(body, headers)).toMatchObject({
      status: 200,
      json: { received: true, duplicate: true },
    });
    const event = await api(`/api/events/${headers['webhook-id']}`);
    expect(event.json).toMatchObject({ duplicates: 1, scheme: 'standard', body });
  });

  it('folds deliveries arriving out of order and flags a conflicting terminal status', async () => {
    await start();
    const base = prediction();
    const now = Math.floor(Date.now() / 1000);
    const sequence = [
      { status: 'succeeded', logs: 'a\nb\n', output: ['x'], ts: now },
      { status: 'processing', logs: 'a\n', ts: now - 2 },
      { status: 'starting', logs: '', ts: now - 3 },
      { status: 'failed', logs: 'a\nb\n', error: 'late', ts: now + 1 },
    ];
    const keys: string[] = [];
    for (const { ts, ...fields } of sequence) {
      const body = JSON.stringify({ ...base, ...fields });
      const headers = signedHeaders(body, { timestampSec: ts });
      keys.push(headers['webhook-id']!);
      expect((await post(body, headers)).status).toBe(200);
    }
    const folded = await api(`/api/predictions/${String(base.id)}`);
    expect(folded.json).toMatchObject({ status: 'succeeded', output: ['x'], event_count: 4, logs: 'a\nb\n' });
    const events = await api(`/api/predictions/${String(base.id)}/events`);
    expect(events.json.data.map((e: { id: string }) => e.id)).toEqual(keys);
    expect(events.json.data.map((e: { conflict: boolean }) => e.conflict)).toEqual([
      false,
      false,
      false,
      true,
    ]);
  });

  it('commits many concurrent deliveries, each once, and lists them all', async () => {
    await start();
    const bodies = Array.from({ length: 60 }, () => JSON.stringify(prediction({ status: 'processing' })));
    const answers = await Promise.all(bodies.map((body) => post(body, signedHeaders(body))));
    expect(answers.every((a) => a.status === 200 && a.json.duplicate === false)).toBe(true);
    const seen = new Set<string>();
    let cursor: string | null = null;
    do {
      const page = await api(`/api/predictions?limit=25${cursor ? `&cursor=${cursor}` : ''}`);
      for (const p of page.json.data as { id: string }[]) seen.add(p.id);
      cursor = page.json.next_cursor as string | null;
    } while (cursor !== null);
    expect(seen.size).toBe(60);
  });

  it('records rejections in the database', async () => {
    await start();
    const body = JSON.stringify(prediction());
    await post(body, { ...signedHeaders(body), 'webhook-signature': 'v1,AAAA' });
    await inlet!.app.inject({ method: 'GET', url: PATH });
    let codes: string[] = [];
    for (let i = 0; i < 40 && codes.length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
      codes = (await api('/api/rejections')).json.data.map((r: { code: string }) => r.code);
    }
    expect(codes).toEqual(['method_not_allowed', 'invalid_signature']);
  });

  it('answers 503 storage_unavailable while the database refuses connections, then recovers', async () => {
    const own = await createTestDatabase(probe.ok ? probe.adminUrl : '', 'inlet_test_webhook_out');
    try {
      await start({ INLET_COMMIT_TIMEOUT_MS: '500' }, own.url);
      const first = JSON.stringify(prediction());
      expect((await post(first, signedHeaders(first))).status).toBe(200);

      await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS false`);
      await own.terminateConnections();
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body);
      const startedAt = performance.now();
      expect(await post(body, headers)).toMatchObject({
        status: 503,
        json: { error: { code: 'storage_unavailable' } },
      });
      expect(performance.now() - startedAt).toBeLessThan(2000);
      expect((await inlet!.app.inject({ url: '/readyz' })).statusCode).toBe(503);

      await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS true`);
      expect(await post(body, headers)).toMatchObject({ status: 200, json: { duplicate: false } });
      expect((await inlet!.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await inlet?.close();
      inlet = undefined;
      await own.drop();
    }
  });
});
