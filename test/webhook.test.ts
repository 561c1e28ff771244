import { createHmac } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Ingest } from '../src/ingest/accept.js';
import { buildApp } from '../src/server/app.js';
import { openStore } from '../src/store/index.js';
import type { Store } from '../src/store/types.js';
import {
  createTestInlet,
  flakyStore,
  OTHER_SECRET,
  prediction,
  SECRET,
  signedHeaders,
  tempDir,
  type TestInlet,
  WEBHOOK_PATH,
  postWebhook,
  quietLogger,
} from './helpers.js';
import { createTestDatabase, postgresOrSkip, type TestDatabase } from './pg-helpers.js';

const PATH = WEBHOOK_PATH;
let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

/** An inlet on its own SQLite file (tests of the HTTP layer, which the store does not change). */
async function start(env: Record<string, string> = {}, flags: Record<string, string | boolean> = {}) {
  inlet = await createTestInlet(env, flags);
  return inlet;
}

const post = (body: string | Buffer, headers: Record<string, string>, path = PATH) =>
  postWebhook(inlet!, body, headers, path);

async function api(url: string) {
  const res = await inlet!.app.inject({ url });
  return { status: res.statusCode, json: res.json() };
}

/** A store the test can take away (`refuse`) and give back (`allow`). */
interface Outage {
  store: Store;
  refuse(): Promise<void>;
  allow(): Promise<void>;
  /** After the inlet (and so the store) is closed. */
  cleanup(): Promise<void>;
}

/** Where the webhook tests keep their data: each runs on every dialect. */
interface Dialect {
  name: string;
  id: Store['dialect'];
  /** A fresh, empty store (undefined: the test inlet's own SQLite file). */
  freshStore(): Promise<Store | undefined>;
  outage(): Promise<Outage>;
}

const sqlite: Dialect = {
  name: 'SQLite',
  id: 'sqlite',
  freshStore: async () => undefined,
  async outage() {
    const tmp = tempDir();
    let failing = false;
    const real = await openStore(`sqlite:${join(tmp.dir, 'inlet.db')}`, { mode: 'serve' });
    return {
      // Commits and probe writes fail with StoreUnavailableError while refused.
      store: flakyStore(real, () => failing),
      refuse: async () => void (failing = true),
      allow: async () => void (failing = false),
      cleanup: async () => tmp.cleanup(),
    };
  },
};

const probe = await postgresOrSkip('the webhook tests on PostgreSQL');
let pgDatabase: TestDatabase | undefined;
afterAll(async () => {
  await pgDatabase?.drop();
});

const postgres = (adminUrl: string): Dialect => ({
  name: 'PostgreSQL',
  id: 'postgres',
  async freshStore() {
    // One database for the file, a fresh schema per inlet.
    pgDatabase ??= await createTestDatabase(adminUrl, 'inlet_test_webhook');
    return openStore(await pgDatabase.freshSchema(), { mode: 'serve' });
  },
  async outage() {
    // A database of its own: the test refuses connections to all of it.
    const own = await createTestDatabase(adminUrl, 'inlet_test_webhook_out');
    const store = await openStore(own.url, { mode: 'serve' });
    return {
      store,
      async refuse() {
        await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS false`);
        await own.terminateConnections();
      },
      async allow() {
        await own.admin(`ALTER DATABASE ${own.name} ALLOW_CONNECTIONS true`);
      },
      cleanup: () => own.drop(),
    };
  },
});

const DIALECTS: Dialect[] = probe.ok ? [sqlite, postgres(probe.adminUrl)] : [sqlite];

describe.each(DIALECTS)('POST /replicate-webhook (CONTRACT §3) on $name', (dialect) => {
  // Shadows the file's start(): every test here runs on the dialect's store.
  async function start(env: Record<string, string> = {}, flags: Record<string, string | boolean> = {}) {
    inlet = await createTestInlet(env, flags, await dialect.freshStore());
    expect(inlet.store.dialect).toBe(dialect.id);
    return inlet;
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

  it('answers 405 with Allow: POST to other methods, before anything else', async () => {
    await start({ INLET_MAX_BODY_BYTES: '2048' });
    for (const method of ['GET', 'PUT', 'DELETE', 'PATCH'] as const) {
      const res = await inlet!.app.inject({
        method,
        url: PATH,
        payload: method === 'GET' ? undefined : 'x'.repeat(5000),
      });
      expect(res.statusCode, method).toBe(405);
      expect(res.headers.allow).toBe('POST');
      expect(res.json().error.code).toBe('method_not_allowed');
      expect(res.json().error.message).toBeTruthy();
    }
  });

  it('answers 413 to a body over the limit, before the content type', async () => {
    await start({ INLET_MAX_BODY_BYTES: '2048' });
    const res = await post('x'.repeat(3000), { 'content-type': 'text/plain' });
    expect(res).toMatchObject({ status: 413, json: { error: { code: 'payload_too_large' } } });
    const ok = JSON.stringify(prediction({ pad: 'y'.repeat(1500) }));
    expect((await post(ok, signedHeaders(ok))).status).toBe(200);
  });

  it('answers 415 to a non-JSON content type and accepts JSON variants or none', async () => {
    await start();
    const body = JSON.stringify(prediction());
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'application/jsonx',
      'multipart/form-data',
    ]) {
      expect((await post(body, { ...signedHeaders(body), 'content-type': type })).json.error.code, type).toBe(
        'unsupported_media_type',
      );
    }
    for (const type of [
      'application/json; charset=utf-8',
      'APPLICATION/JSON',
      'application/cloudevents+json',
    ]) {
      const b = JSON.stringify(prediction());
      expect((await post(b, { ...signedHeaders(b), 'content-type': type })).status, type).toBe(200);
    }
    const b = JSON.stringify(prediction());
    const { 'content-type': _ct, ...noType } = signedHeaders(b);
    const res = await inlet!.app.inject({
      method: 'POST',
      url: PATH,
      payload: Buffer.from(b),
      headers: noType,
    });
    expect(res.statusCode).toBe(200);
  });

  it('answers 400 missing_signature when the standard set is incomplete or empty', async () => {
    await start();
    const body = JSON.stringify(prediction());
    const full = signedHeaders(body);
    expect((await post(body, { 'content-type': 'application/json' })).json.error.code).toBe(
      'missing_signature',
    );
    for (const drop of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const headers = { ...full, [drop]: '' };
      const res = await post(body, headers);
      expect(res.status, drop).toBe(400);
      expect(res.json.error.code).toBe('missing_signature');
    }
  });

  it('answers 400 malformed_signature to a timestamp that is not a decimal integer', async () => {
    await start();
    const body = JSON.stringify(prediction());
    for (const ts of ['abc', '12.5', '-5', '1e9', '0x10']) {
      const res = await post(body, { ...signedHeaders(body), 'webhook-timestamp': ts });
      expect(res.status, ts).toBe(400);
      expect(res.json.error.code).toBe('malformed_signature');
    }
  });

  it('answers 403 timestamp_out_of_tolerance both ways, and --tolerance 0 turns it off', async () => {
    await start();
    const body = JSON.stringify(prediction());
    const now = Math.floor(Date.now() / 1000);
    for (const ts of [now - 301 - 5, now + 301 + 5]) {
      const res = await post(body, signedHeaders(body, { timestampSec: ts }));
      expect(res).toMatchObject({ status: 403, json: { error: { code: 'timestamp_out_of_tolerance' } } });
    }
    await inlet!.close();
    await start({ INLET_TOLERANCE_SECONDS: '0' });
    expect((await post(body, signedHeaders(body, { timestampSec: 1614265330 }))).status).toBe(200);
  });

  it('answers 403 invalid_signature to garbage, a wrong secret or a changed body', async () => {
    await start();
    const body = JSON.stringify(prediction());
    expect(
      (await post(body, { ...signedHeaders(body), 'webhook-signature': 'garbage' })).json.error.code,
    ).toBe('invalid_signature');
    expect((await post(body, signedHeaders(body, { secret: OTHER_SECRET }))).status).toBe(403);
    const headers = signedHeaders(body);
    expect((await post(body.replace('hello', 'hellO'), headers)).json.error.code).toBe('invalid_signature');
  });

  it('accepts any configured secret (rotation)', async () => {
    await start({ REPLICATE_WEBHOOK_SECRET: `${OTHER_SECRET}, ${SECRET}` });
    const body = JSON.stringify(prediction());
    expect((await post(body, signedHeaders(body, { secret: SECRET }))).status).toBe(200);
    const body2 = JSON.stringify(prediction());
    expect((await post(body2, signedHeaders(body2, { secret: OTHER_SECRET }))).status).toBe(200);
  });

  it('answers 400 invalid_json and 422 invalid_payload after a valid signature', async () => {
    await start();
    for (const body of ['{not json', '[1,2]', '"text"', 'null', Buffer.from([0x7b, 0xff, 0x7d])]) {
      const res = await post(body, signedHeaders(body));
      expect(res.status, String(body)).toBe(400);
      expect(res.json.error.code).toBe('invalid_json');
    }
    for (const obj of [
      { status: 'starting' },
      { id: '', status: 'starting' },
      { id: 'x', status: '' },
      { id: 5, status: 'x' },
      { id: 'x' },
    ]) {
      const body = JSON.stringify(obj);
      const res = await post(body, signedHeaders(body));
      expect(res.status, body).toBe(422);
      expect(res.json.error.code).toBe('invalid_payload');
    }
  });

  it('checks the signature before the body: an unsigned bad body is missing_signature', async () => {
    await start();
    expect((await post('{not json', { 'content-type': 'application/json' })).json.error.code).toBe(
      'missing_signature',
    );
  });

  it('answers 404 not_found on paths it does not serve', async () => {
    await start();
    const res = await inlet!.app.inject({ method: 'POST', url: '/nope', payload: '{}' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
  });

  it('accepts the hex X-Replicate-Signature only when asked to', async () => {
    const body = JSON.stringify(prediction());
    const hex = createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(body).digest('hex');
    await start();
    expect(
      (await post(body, { 'content-type': 'application/json', 'x-replicate-signature': hex })).json.error
        .code,
    ).toBe('missing_signature');
    await inlet!.close();
    await start({ INLET_ACCEPT_HEX_SIGNATURE: '1' });
    expect(
      await post(body, { 'content-type': 'application/json', 'x-replicate-signature': hex }),
    ).toMatchObject({
      status: 200,
      json: { duplicate: false },
    });
    const events = await inlet!.app.inject({ url: `/api/predictions/${JSON.parse(body).id}/events` });
    expect(events.json().data[0]).toMatchObject({ scheme: 'hex' });
    expect(events.json().data[0].id).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('with --insecure-skip-verify accepts unsigned requests but still verifies signed ones', async () => {
    await start({}, { insecureSkipVerify: true });
    const body = JSON.stringify(prediction());
    expect(await post(body, { 'content-type': 'application/json' })).toMatchObject({ status: 200 });
    const withId = JSON.stringify(prediction());
    await post(withId, { 'content-type': 'application/json', 'webhook-id': 'msg_unsigned1' });
    const event = await inlet!.app.inject({ url: '/api/events/msg_unsigned1' });
    expect(event.json()).toMatchObject({ scheme: 'unsigned', id: 'msg_unsigned1' });
    const forged = JSON.stringify(prediction());
    expect((await post(forged, { ...signedHeaders(forged, { secret: OTHER_SECRET }) })).status).toBe(403);
  });

  it('answers 503 storage_unavailable with Retry-After when the store cannot commit, and recovers', async () => {
    const outage = await dialect.outage();
    try {
      inlet = await createTestInlet({ INLET_COMMIT_TIMEOUT_MS: '500' }, {}, outage.store);
      const first = JSON.stringify(prediction());
      expect((await post(first, signedHeaders(first))).status).toBe(200);

      await outage.refuse();
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body);
      const startedAt = performance.now();
      const res = await post(body, headers);
      expect(res.status).toBe(503);
      expect(res.json.error.code).toBe('storage_unavailable');
      expect(res.headers['retry-after']).toMatch(/^\d+$/);
      expect(performance.now() - startedAt).toBeLessThan(2000);
      expect((await inlet.app.inject({ url: '/readyz' })).statusCode).toBe(503);

      await outage.allow();
      expect(await post(body, headers)).toMatchObject({ status: 200, json: { duplicate: false } });
      expect((await inlet.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    } finally {
      await inlet?.close();
      inlet = undefined;
      await outage.cleanup();
    }
  });

  it('records every 4xx in the rejection log, redacted', async () => {
    await start();
    const body = JSON.stringify(prediction());
    await post(body, {
      ...signedHeaders(body),
      'webhook-signature': 'v1,AAAA',
      authorization: 'Bearer secret',
    });
    await inlet!.app.inject({ method: 'GET', url: PATH });
    await inlet!.settled();
    const res = await inlet!.app.inject({ url: '/api/rejections' });
    const data = res.json().data;
    expect(data.map((r: { code: string }) => r.code)).toEqual(['method_not_allowed', 'invalid_signature']);
    expect(data[1].headers['webhook-signature']).toBe('[redacted]');
    expect(data[1].headers.authorization).toBe('[redacted]');
    expect(data[1].body).toBe(body);
    expect(data[1]).toHaveProperty('remote_address');
    expect(data[1].received_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  });
});

describe('--trust-proxy', () => {
  async function rejectionAddress(remoteAddress: string, forwardedFor: string) {
    await inlet!.app.inject({
      method: 'POST',
      url: PATH,
      payload: '{}',
      remoteAddress,
      headers: { 'content-type': 'application/json', 'x-forwarded-for': forwardedFor },
    });
    await inlet!.settled();
    const data: { remote_address: string }[] = (await api('/api/rejections?limit=1')).json.data;
    return data[0]?.remote_address;
  }

  it('records the client named by a trusted proxy, and the socket address otherwise', async () => {
    await start({ INLET_TRUST_PROXY: '10.0.0.0/8' });
    expect(await rejectionAddress('10.0.0.5', '198.51.100.1, 203.0.113.7')).toBe('203.0.113.7');
    await inlet!.close();
    inlet = undefined;
    await start();
    expect(await rejectionAddress('10.0.0.5', '203.0.113.7')).toBe('10.0.0.5');
  });

  it('never opens the admin API, and refuses a bad range at start', async () => {
    await start({ INLET_TRUST_PROXY: '127.0.0.1' });
    const res = await inlet!.app.inject({
      url: '/api/predictions',
      remoteAddress: '127.0.0.1',
      headers: { 'x-forwarded-for': '127.0.0.1' },
    });
    expect(res.statusCode).toBe(403);
    await expect(start({ INLET_TRUST_PROXY: '10.0.0.0/99' })).rejects.toThrow(
      /--trust-proxy: "10.0.0.0\/99"/,
    );
  });
});

describe('framework-level errors keep to the contract codes', () => {
  it('answers a URL that does not decode with 400 bad_request, not a 5xx', async () => {
    await start();
    const res = await inlet!.app.inject({ url: '/api/predictions/%E0%A4%A' });
    expect(res.statusCode).toBe(400);
    expect(res.json().error.code).toBe('bad_request');
  });

  it('answers 405 to methods Fastify does not route, and checks access on unknown /api paths', async () => {
    await start({ INLET_ADMIN_TOKEN: 'tok' });
    const res = await inlet!.app.inject({ method: 'PROPFIND' as 'GET', url: PATH });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
    expect((await inlet!.app.inject({ url: '/api/nothing-here' })).json().error.code).toBe('unauthorized');
    const authed = await inlet!.app.inject({
      url: '/api/nothing-here',
      headers: { authorization: 'Bearer tok' },
    });
    expect(authed.json().error.code).toBe('not_found');
  });

  it('keeps the first 64 KiB of a 405 body in the rejection log', async () => {
    await start();
    await inlet!.app.inject({ method: 'PUT', url: PATH, payload: 'z'.repeat(100_000) });
    await inlet!.settled();
    const [rejection] = (await inlet!.app.inject({ url: '/api/rejections' })).json().data;
    expect(rejection.code).toBe('method_not_allowed');
    expect(rejection.body).toBe('z'.repeat(64 * 1024));
  });

  it('accepts a delivery whose body nests deeper than JSON.stringify can write', async () => {
    await start();
    const depth = 6000;
    const body = `{"id":"pred_deep","status":"starting","input":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
    const res = await post(body, signedHeaders(body));
    expect(res.status).toBe(200);
    const list = await inlet!.app.inject({ url: '/api/predictions' });
    expect(list.json().data[0]).toMatchObject({ id: 'pred_deep', status: 'starting' });
  });

  it('finds the valid signature when two webhook-signature lines were joined with ", "', async () => {
    await start();
    const body = JSON.stringify(prediction());
    const headers = signedHeaders(body);
    const joined = `${headers['webhook-signature']}, v1,${Buffer.alloc(32).toString('base64')}`;
    expect((await post(body, { ...headers, 'webhook-signature': joined })).status).toBe(200);
  });
});

describe('a bug while handling a delivery', () => {
  it('answers 500 internal_error (Replicate retries any 5xx), in the error shape, and stores nothing', async () => {
    await start();
    const app = buildApp(
      {
        webhookPath: PATH,
        maxBodyBytes: 1024,
        adminToken: undefined,
        headersTimeoutMs: 10_000,
        requestTimeoutMs: 60_000,
        maxInflightBytes: 1024 * 1024,
        closeTimeoutMs: 1_000,
      },
      {
        store: inlet!.store,
        batcher: inlet!.batcher,
        logger: quietLogger,
        ingest: {
          accept: () => Promise.reject(new TypeError('a bug')),
          reject: () => {
            throw new TypeError('a bug');
          },
        } as unknown as Ingest,
      },
    );
    const body = JSON.stringify(prediction());
    const expected = {
      error: { code: 'internal_error', message: 'Inlet failed to handle this request; the log says why.' },
    };
    const res = await app.inject({ method: 'POST', url: PATH, payload: body, headers: signedHeaders(body) });
    expect(res.statusCode).toBe(500);
    expect(res.json()).toEqual(expected);
    // The same over a socket, where the webhook handler runs ahead of Fastify.
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const other = JSON.stringify(prediction());
      const http = await fetch(`${address}${PATH}`, {
        method: 'POST',
        body: other,
        headers: signedHeaders(other),
      });
      expect(http.status).toBe(500);
      expect(http.headers.get('content-type')).toBe('application/json; charset=utf-8');
      expect(await http.json()).toEqual(expected);
    } finally {
      await app.close();
    }
  });
});

describe('webhook path', () => {
  it('serves a custom --path, ignores query strings, and 404s the default path then', async () => {
    await start({ INLET_WEBHOOK_PATH: '/hooks/replicate' });
    const body = JSON.stringify(prediction());
    expect((await post(body, signedHeaders(body), '/hooks/replicate?tenant=a')).status).toBe(200);
    const other = JSON.stringify(prediction());
    expect((await post(other, signedHeaders(other), '/replicate-webhook')).json.error.code).toBe('not_found');
  });

  it('answers the webhook path with one trailing slash too (Replicate never follows a redirect)', async () => {
    await start();
    const body = JSON.stringify(prediction());
    expect((await post(body, signedHeaders(body), `${PATH}/`)).json).toEqual({
      received: true,
      duplicate: false,
    });
    expect((await post(body, signedHeaders(body), `${PATH}//`)).json.error.code).toBe('not_found');
    const res = await inlet!.app.inject({ method: 'GET', url: `${PATH}/` });
    expect(res.statusCode).toBe(405);
  });

  it('records a POST to any other path as not_found, with a hint and its body, never parsing it first', async () => {
    await start();
    const body = '{"id": "pred_lost", "status": "succeeded", '; // not even JSON
    const misses = ['/prod/replicate-webhook', '/replicate-webhooks', '/api-webhook'];
    for (const url of misses) {
      const res = await inlet!.app.inject({
        method: 'POST',
        url,
        payload: body,
        headers: { 'content-type': 'application/json' },
      });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('not_found');
    }
    // Other methods on unknown paths are not deliveries: answered, not recorded.
    expect((await inlet!.app.inject({ url: '/favicon.ico' })).statusCode).toBe(404);
    await inlet!.settled();
    const data: { code: string; message: string; body: string }[] = (await api('/api/rejections')).json.data;
    expect(data.map((r) => r.code)).toEqual(['not_found', 'not_found', 'not_found']);
    const [other, plural, prefixed] = data;
    expect(prefixed!.message).toContain('adds the prefix /prod');
    expect(plural!.message).toContain('did you mean /replicate-webhook?');
    expect(other!.message).toContain('Inlet receives webhooks at /replicate-webhook');
    expect(prefixed!.body).toBe(body);
    // A POST to an unknown /api path is still only the API's 404, behind its access rule.
    const apiMiss = await inlet!.app.inject({
      method: 'POST',
      url: '/api/nope',
      payload: '{bad',
      headers: { 'content-type': 'application/json' },
    });
    expect(apiMiss.statusCode).toBe(404);
  });
});
