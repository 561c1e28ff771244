import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openStore } from '../src/store/index.js';
import { createTestDatabase, probePostgres } from './pg-helpers.js';
import {
  createTestInlet,
  flakyStore,
  OTHER_SECRET,
  prediction,
  signedHeaders,
  tempDir,
  type TestInlet,
  WEBHOOK_PATH,
  postWebhook,
} from './helpers.js';

let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

/** Parses the text exposition into `name{labels}` → value (labels as written, sorted by the client). */
function parseMetrics(text: string): Map<string, number> {
  const values = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable metrics line: ${line}`);
    values.set(m[1]!, Number(m[2]));
  }
  return values;
}

async function scrape(
  headers: Record<string, string> = {},
  from: TestInlet = inlet!,
): Promise<Map<string, number>> {
  const res = await from.app.inject({ url: '/metrics', headers });
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseMetrics(res.body);
}

const deliveries = (m: Map<string, number>, outcome: string, code: string) =>
  m.get(`inlet_webhook_deliveries_total{outcome="${outcome}",code="${code}"}`) ?? 0;

async function post(body: string, headers: Record<string, string>, method: 'POST' | 'GET' = 'POST') {
  return inlet!.app.inject({
    method,
    url: WEBHOOK_PATH,
    payload: method === 'POST' ? body : undefined,
    headers,
  });
}

describe('GET /metrics', () => {
  it('documents every inlet_ metric in docs/metrics.md with its type and labels, and nothing else', async () => {
    inlet = await createTestInlet();
    const doc = readFileSync(new URL('../docs/metrics.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `(inlet_[a-z_]+)` \| (counter|gauge|histogram) \| ([^|]*) \|/gm)];
    const documented = new Map(
      rows.map((r) => [
        r[1]!,
        { type: r[2]!, labels: [...r[3]!.matchAll(/`([a-z_]+)`/g)].map((l) => l[1]!).sort() },
      ]),
    );
    const registered = inlet.metrics.inletRegistry.getMetricsAsArray();
    expect(registered.length).toBeGreaterThan(5);
    for (const metric of registered) {
      expect(metric.name.startsWith('inlet_'), metric.name).toBe(true);
      const { type } = await (metric as unknown as { get(): Promise<{ type: string }> }).get();
      const labelNames = [...((metric as unknown as { labelNames: string[] }).labelNames ?? [])].sort();
      expect(documented.get(metric.name), metric.name).toEqual({ type: String(type), labels: labelNames });
    }
    expect([...documented.keys()].sort()).toEqual(registered.map((m) => m.name).sort());
    // Every name documented anywhere in the file is a real metric (no stale prose).
    const mentioned = new Set([...doc.matchAll(/\b(inlet_[a-z_]+?)(?:_bucket)?\b/g)].map((m) => m[1]!));
    for (const name of mentioned) expect(documented.has(name), name).toBe(true);
  });

  it('counts accepted, duplicate, rejected by code and unavailable deliveries, with latencies', async () => {
    const tmp = tempDir();
    const store = await openStore(`sqlite:${join(tmp.dir, 'inlet.db')}`, { mode: 'serve' });
    let failing = false;
    const flaky = flakyStore(store, () => failing);
    inlet = await createTestInlet(
      { INLET_COMMIT_TIMEOUT_MS: '1500', INLET_MAX_BODY_BYTES: '2048' },
      {},
      flaky,
    );
    const before = await scrape();
    expect(deliveries(before, 'accepted', 'ok')).toBe(0);

    const body = JSON.stringify(prediction({ status: 'succeeded' }));
    const headers = signedHeaders(body);
    expect((await post(body, headers)).statusCode).toBe(200);
    expect((await post(body, headers)).statusCode).toBe(200);
    const second = JSON.stringify(prediction());
    expect((await post(second, signedHeaders(second))).statusCode).toBe(200);
    for (let i = 0; i < 3; i++) {
      const forged = JSON.stringify(prediction());
      expect((await post(forged, signedHeaders(forged, { secret: OTHER_SECRET }))).statusCode).toBe(403);
    }
    expect((await post('', {}, 'GET')).statusCode).toBe(405);
    expect((await post('x'.repeat(3000), { 'content-type': 'application/json' })).statusCode).toBe(413);
    expect((await post(body, { 'content-type': 'application/json' })).statusCode).toBe(400);
    // A conflicting terminal status is stored, flagged and counted.
    const conflicting = JSON.stringify({ ...JSON.parse(body), status: 'failed' });
    expect((await post(conflicting, signedHeaders(conflicting))).statusCode).toBe(200);
    failing = true;
    const lost = JSON.stringify(prediction());
    const answer = post(lost, signedHeaders(lost));
    // While the commit keeps failing, the gauges show it.
    let during = await scrape();
    for (let i = 0; i < 100 && (during.get('inlet_store_errors_total{operation="commit"}') ?? 0) === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
      during = await scrape();
    }
    expect(during.get('inlet_store_healthy')).toBe(0);
    expect(during.get('inlet_commit_pending')).toBe(1);
    expect((await answer).statusCode).toBe(503);

    // The rejection log writes in the background.
    await inlet.settled();
    const m = await scrape();
    expect(deliveries(m, 'accepted', 'ok')).toBe(3);
    expect(deliveries(m, 'duplicate', 'ok')).toBe(1);
    expect(deliveries(m, 'rejected', 'invalid_signature')).toBe(3);
    expect(deliveries(m, 'rejected', 'method_not_allowed')).toBe(1);
    expect(deliveries(m, 'rejected', 'payload_too_large')).toBe(1);
    expect(deliveries(m, 'rejected', 'missing_signature')).toBe(1);
    expect(deliveries(m, 'rejected', 'invalid_json')).toBe(0);
    expect(deliveries(m, 'unavailable', 'storage_unavailable')).toBe(1);
    expect(m.get('inlet_webhook_conflicts_total')).toBe(1);
    expect(m.get('inlet_webhook_duration_seconds_count{outcome="accepted"}')).toBe(3);
    expect(m.get('inlet_webhook_duration_seconds_count{outcome="rejected"}')).toBe(6);
    expect(m.get('inlet_webhook_duration_seconds_count{outcome="unavailable"}')).toBe(1);
    expect(m.get('inlet_webhook_duration_seconds_sum{outcome="accepted"}')).toBeGreaterThan(0);
    // The 503 waited at least the commit timeout.
    expect(m.get('inlet_webhook_duration_seconds_sum{outcome="unavailable"}')).toBeGreaterThanOrEqual(1.4);
    expect(m.get('inlet_commit_timeouts_total')).toBe(1);
    expect(m.get('inlet_store_errors_total{operation="commit"}')).toBeGreaterThanOrEqual(1);
    expect(m.get('inlet_commit_batch_size_count')).toBeGreaterThanOrEqual(5);
    expect(m.get('inlet_commit_batch_size_sum')).toBeGreaterThanOrEqual(5);
    expect(m.get('inlet_commit_wait_seconds_count')).toBe(5);
    expect(m.get('inlet_rejections_recorded_total')).toBe(6);
    // Default process metrics are there too.
    expect(m.get('process_resident_memory_bytes')).toBeGreaterThan(0);
    expect([...m.keys()].some((k) => k.startsWith('nodejs_heap_size_used_bytes'))).toBe(true);

    failing = false;
    const retried = JSON.stringify(prediction());
    expect((await post(retried, signedHeaders(retried))).statusCode).toBe(200);
    expect((await scrape()).get('inlet_store_healthy')).toBe(1);
    tmp.cleanup();
  });

  it('counts PostgreSQL commits by path, and none on SQLite', async () => {
    inlet = await createTestInlet();
    const body = JSON.stringify(prediction());
    expect((await post(body, signedHeaders(body))).statusCode).toBe(200);
    const onSqlite = await scrape();
    expect([...onSqlite.keys()].filter((k) => k.startsWith('inlet_store_commits_total'))).toEqual([]);
    expect(onSqlite.get('inlet_store_guess_misses_total')).toBe(0);
    await inlet.close();
    inlet = undefined;

    const probe = await probePostgres();
    if (!probe.ok) return;
    const db = await createTestDatabase(probe.adminUrl, 'inlet_test_metrics');
    try {
      const store = await openStore(await db.freshSchema(), { mode: 'serve' });
      inlet = await createTestInlet({}, {}, store);
      const first = prediction({ status: 'starting' });
      for (const status of ['starting', 'processing', 'succeeded']) {
        const next = JSON.stringify({ ...first, status });
        expect((await post(next, signedHeaders(next))).statusCode).toBe(200);
      }
      const m = await scrape();
      // One batch each, all guessed: this instance wrote the prediction's state itself.
      expect(m.get('inlet_store_commits_total{path="guessed"}')).toBe(3);
      expect(m.get('inlet_store_commits_total{path="locked"}')).toBe(0);
      expect(m.get('inlet_store_guess_misses_total')).toBe(0);
      await inlet.close();
      inlet = undefined;
    } finally {
      await db.drop();
    }
  });

  it('counts each app on its own registry', async () => {
    inlet = await createTestInlet();
    const other = await createTestInlet();
    try {
      const body = JSON.stringify(prediction());
      expect((await postWebhook(other, body, signedHeaders(body))).status).toBe(200);
      expect(deliveries(await scrape(), 'accepted', 'ok')).toBe(0);
      expect(deliveries(await scrape({}, other), 'accepted', 'ok')).toBe(1);
    } finally {
      await other.close();
    }
  });

  it('follows the /api access rule: loopback only without a token, the bearer token with one', async () => {
    inlet = await createTestInlet();
    const remote = await inlet.app.inject({ url: '/metrics', remoteAddress: '203.0.113.9' });
    expect(remote.statusCode).toBe(403);
    expect(remote.json().error.code).toBe('forbidden');
    const proxied = await inlet.app.inject({
      url: '/metrics',
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(proxied.statusCode).toBe(403);
    await inlet.close();

    inlet = await createTestInlet({ INLET_ADMIN_TOKEN: 'scrape-me' });
    const bare = await inlet.app.inject({ url: '/metrics' });
    expect(bare.statusCode).toBe(401);
    expect(bare.json().error.code).toBe('unauthorized');
    const m = await scrape({ authorization: 'Bearer scrape-me' });
    expect(m.has('inlet_commit_pending')).toBe(true);
  });
});
