// Edge inputs a careful user would try against CONTRACT §3 and §5, found in an acceptance audit.
import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createTestInlet,
  prediction,
  SECRET,
  signedHeaders,
  tempDir,
  type TestInlet,
  postWebhook,
} from './helpers.js';
import { runCli } from './process-helpers.js';

const KEY = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
let inlet: TestInlet | undefined;

afterEach(async () => {
  await inlet?.close();
  inlet = undefined;
});

async function start(env: Record<string, string> = {}) {
  inlet = await createTestInlet(env);
  return inlet;
}

function v1(id: string, ts: string, body: string | Buffer): string {
  const mac = createHmac('sha256', KEY);
  mac.update(`${id}.${ts}.`);
  mac.update(body);
  return `v1,${mac.digest('base64')}`;
}

const nowSec = () => Math.floor(Date.now() / 1000);
let seq = 0;
const msgId = () => `msg_audit_${process.pid}_${++seq}`;

const post = (body: string | Buffer, headers: Record<string, string>) => postWebhook(inlet!, body, headers);

async function get(url: string, headers: Record<string, string> = {}, remoteAddress?: string) {
  const res = await inlet!.app.inject({ url, headers, ...(remoteAddress ? { remoteAddress } : {}) });
  return { status: res.statusCode, json: res.json() };
}

/** The newest entry of the rejection log (written in the background), which must be `code`. */
async function latestRejection(code: string) {
  await inlet!.settled();
  const latest = (await get('/api/rejections?limit=1')).json.data[0];
  expect(latest?.code).toBe(code);
  return latest;
}

function expectError(res: { status: number; json: unknown }, status: number, code: string) {
  expect(res.status, JSON.stringify(res.json)).toBe(status);
  const body = res.json as { error: { code: string; message: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(body.error.code).toBe(code);
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe('webhook edge inputs (CONTRACT §3)', () => {
  it('treats every JSON media type as JSON, a missing or empty one as accepted, others as 415', async () => {
    await start();
    const accepted = [
      'application/json',
      'application/json;charset=utf-8',
      'APPLICATION/JSON; charset=UTF-8',
      'application/vnd.api+json',
      'application/cloudevents+json; charset=utf-8',
      '',
    ];
    for (const type of accepted) {
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body);
      if (type === '') delete headers['content-type'];
      else headers['content-type'] = type;
      expect((await post(body, headers)).status, type).toBe(200);
    }
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'text/json',
      'application/jsonx',
    ]) {
      const body = JSON.stringify(prediction());
      expectError(
        await post(body, { ...signedHeaders(body), 'content-type': type }),
        415,
        'unsupported_media_type',
      );
    }
  });

  it('counts empty or blank signature headers as absent (400 missing_signature)', async () => {
    await start();
    const body = JSON.stringify(prediction());
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      for (const value of ['', '   ']) {
        const headers = { ...signedHeaders(body), [name]: value };
        expectError(await post(body, headers), 400, 'missing_signature');
      }
    }
  });

  it('reads a signature list with odd spacing, tabs and non-v1 entries', async () => {
    await start();
    for (const shape of ['  v1,AAAA   v2,BBB  %s  ', 'v1,AAAA\t%s', 'v1a,x v0,y %s']) {
      const body = JSON.stringify(prediction());
      const id = msgId();
      const ts = String(nowSec());
      const headers = {
        'webhook-id': id,
        'webhook-timestamp': ts,
        'webhook-signature': shape.replace('%s', v1(id, ts, body)),
      };
      expect((await post(body, headers)).json, shape).toEqual({ received: true, duplicate: false });
    }
  });

  it('answers malformed_signature only to non-integer timestamps, before checking the signature', async () => {
    await start();
    const body = JSON.stringify(prediction());
    for (const ts of ['1.5', '1e9', '0x10', 'abc', '١٢٣']) {
      const headers = { 'webhook-id': msgId(), 'webhook-timestamp': ts, 'webhook-signature': 'v1,garbage' };
      expectError(await post(body, headers), 400, 'malformed_signature');
    }
    // A well-formed but absurd timestamp is a clock problem, not a format problem.
    const far = { 'webhook-id': msgId(), 'webhook-timestamp': '9'.repeat(30), 'webhook-signature': 'v1,x' };
    expectError(await post(body, far), 403, 'timestamp_out_of_tolerance');
  });

  it('allows exactly the tolerance in both directions, checks the clock before the signature', async () => {
    await start({ INLET_TOLERANCE_SECONDS: '60' });
    const now = nowSec();
    for (const ts of [now - 55, now + 55]) {
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body, { timestampSec: ts });
      expect((await post(body, headers)).status, String(ts - now)).toBe(200);
    }
    for (const ts of [now - 65, now + 65]) {
      const body = JSON.stringify(prediction());
      const headers = signedHeaders(body, { timestampSec: ts });
      expectError(await post(body, headers), 403, 'timestamp_out_of_tolerance');
    }
    const stale = {
      'webhook-id': msgId(),
      'webhook-timestamp': String(now - 1000),
      'webhook-signature': 'v1,AAAA',
    };
    expectError(await post('{}', stale), 403, 'timestamp_out_of_tolerance');
  });

  it('turns the clock check off with tolerance 0', async () => {
    await start({ INLET_TOLERANCE_SECONDS: '0' });
    const body = JSON.stringify(prediction());
    const headers = signedHeaders(body, { timestampSec: 1_000_000_000 });
    expect((await post(body, headers)).status).toBe(200);
  });

  it('verifies raw bytes: whitespace, CRLF and escapes survive byte-exact', async () => {
    await start();
    const id = `pred_bytes_${process.pid}`;
    const body = Buffer.from(`\r\n { "id" : "${id}" ,\n"status":"starting", "t":"é😀\\u00e9" } \r\n`);
    const headers = signedHeaders(body);
    expect((await post(body, headers)).status).toBe(200);
    const event = await get(`/api/events/${headers['webhook-id']}`);
    expect(Buffer.from(event.json.body as string).equals(body)).toBe(true);
  });

  it('rejects bodies that are not JSON objects or not UTF-8 as invalid_json', async () => {
    await start();
    const bodies: (string | Buffer)[] = [
      '',
      '   ',
      '[]',
      'null',
      '"x"',
      '{"id":"a","status":"starting"} x',
      Buffer.concat([
        Buffer.from('{"id":"a","status":"starting","x":"'),
        Buffer.from([0xff]),
        Buffer.from('"}'),
      ]),
    ];
    for (const body of bodies) expectError(await post(body, signedHeaders(body)), 400, 'invalid_json');
  });

  it('rejects objects without non-empty string id and status as invalid_payload', async () => {
    await start();
    for (const shape of [
      {},
      { status: 'starting' },
      { id: '', status: 'starting' },
      { id: 1, status: 'starting' },
      { id: 'x' },
      { id: 'x', status: '' },
      { id: 'x', status: null },
      { id: 'x', status: ['starting'] },
    ]) {
      const body = JSON.stringify(shape);
      expectError(await post(body, signedHeaders(body)), 422, 'invalid_payload');
    }
  });

  it('keys hex deliveries by sha256 of the body and redacts the hex header', async () => {
    await start({ INLET_ACCEPT_HEX_SIGNATURE: '1' });
    const body = JSON.stringify(prediction());
    const hex = createHmac('sha256', Buffer.from(SECRET, 'utf8')).update(body).digest('hex');
    expect((await post(body, { 'x-replicate-signature': hex })).json.duplicate).toBe(false);
    expect((await post(body, { 'x-replicate-signature': hex })).json.duplicate).toBe(true);
    const key = `sha256:${createHash('sha256').update(body).digest('hex')}`;
    const event = await get(`/api/events/${encodeURIComponent(key)}`);
    expect(event.json).toMatchObject({ id: key, scheme: 'hex', duplicates: 1 });
    expect(event.json.headers['x-replicate-signature']).toBe('[redacted]');
    // With the standard set complete, it is the one verified, even next to a good hex header.
    const std = {
      'webhook-id': msgId(),
      'webhook-timestamp': String(nowSec()),
      'webhook-signature': 'v1,AAAA',
    };
    expectError(await post(body, { ...std, 'x-replicate-signature': hex }), 403, 'invalid_signature');
  });

  it('answers 404 not_found as JSON for paths it does not serve', async () => {
    await start();
    for (const url of ['/nope', '/replicate-webhook/extra', '/api/nope']) {
      const res = await inlet!.app.inject({ method: 'GET', url });
      expectError({ status: res.statusCode, json: res.json() }, 404, 'not_found');
    }
  });

  it('records a 4xx with the first 64 KiB of an unauthenticated body, and a whole authenticated one', async () => {
    await start();
    const big = `{"id":"x","pad":"${'z'.repeat(100 * 1024)}"`; // not valid JSON
    const forged = {
      'webhook-id': msgId(),
      'webhook-timestamp': String(nowSec()),
      'webhook-signature': 'v1,AAAA',
    };
    expectError(
      await post(big, { ...forged, cookie: 'a=b', authorization: 'Bearer t' }),
      403,
      'invalid_signature',
    );
    let latest = await latestRejection('invalid_signature');
    expect(Object.keys(latest)).toEqual(
      expect.arrayContaining(['id', 'received_at', 'code', 'message', 'remote_address', 'headers', 'body']),
    );
    expect(latest.code).toBe('invalid_signature');
    expect(latest.body.length).toBe(64 * 1024);
    expect(latest.headers).toMatchObject({
      'webhook-signature': '[redacted]',
      cookie: '[redacted]',
      authorization: '[redacted]',
    });
    expectError(await post(big, signedHeaders(big)), 400, 'invalid_json');
    latest = await latestRejection('invalid_json');
    expect(latest.code).toBe('invalid_json');
    // The list carries summaries: the whole body is kept, but listed cut to 64 KiB, saying so…
    expect(latest.body).toBe(big.slice(0, 64 * 1024));
    expect(latest).toMatchObject({ body_truncated: true, body_bytes: big.length });
    // …and served whole by id.
    const one = await get(`/api/rejections/${latest.id}`);
    expect(one.json).toMatchObject({ id: latest.id, code: 'invalid_json', body: big });
  });
});

describe('admin API edge inputs (CONTRACT §5)', () => {
  const RFC3339_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

  async function deliver(body: Record<string, unknown>) {
    const text = JSON.stringify(body);
    const headers = signedHeaders(text);
    expect((await post(text, headers)).status).toBe(200);
    return headers['webhook-id']!;
  }

  it('lists exactly the documented fields, times in RFC 3339 UTC with milliseconds', async () => {
    await start();
    const p = prediction({ status: 'succeeded', output: ['o'], logs: 'l', data_removed: false });
    const eventId = await deliver(p);
    const id = String(p.id);
    const summary = (await get('/api/predictions')).json.data[0];
    for (const hidden of ['input', 'output', 'logs']) expect(summary).not.toHaveProperty(hidden);
    for (const field of [
      'id',
      'status',
      'model',
      'kind',
      'event_count',
      'first_received_at',
      'last_received_at',
    ])
      expect(summary).toHaveProperty(field);
    const full = (await get(`/api/predictions/${id}`)).json;
    expect(full).toMatchObject({ id, status: 'succeeded', output: ['o'], logs: 'l', data_removed: false });
    expect(full.first_received_at).toMatch(RFC3339_MS);
    expect(full.last_received_at).toMatch(RFC3339_MS);
    expect(full.created_at).toBe(p.created_at); // Replicate's fields as sent
    const events = (await get(`/api/predictions/${id}/events`)).json;
    expect(Object.keys(events)).toEqual(['data', 'next_cursor']);
    expect(Object.keys(events.data[0]).sort()).toEqual(
      ['conflict', 'duplicates', 'id', 'received_at', 'scheme', 'status'].sort(),
    );
    expect(events.data[0].received_at).toMatch(RFC3339_MS);
    const event = (await get(`/api/events/${eventId}`)).json;
    expect(Object.keys(event)).toEqual(
      expect.arrayContaining(['id', 'received_at', 'status', 'scheme', 'duplicates', 'conflict']),
    );
    expect(event).toMatchObject({ id: eventId, prediction_id: id, scheme: 'standard' });
  });

  it('validates limit, cursor and repeated parameters with 400 invalid_query', async () => {
    await start();
    await deliver(prediction());
    for (const q of [
      'limit=0',
      'limit=201',
      'limit=-1',
      'limit=1.5',
      'limit=abc',
      'limit=1e2',
      'limit=1&limit=2',
    ]) {
      for (const path of ['/api/predictions', '/api/rejections']) {
        expectError(await get(`${path}?${q}`), 400, 'invalid_query');
      }
    }
    for (const q of ['cursor=abc', 'cursor=WzFd', 'since=2026-11-27', 'since=garbage', 'until=1795796481']) {
      expectError(await get(`/api/predictions?${q}`), 400, 'invalid_query');
    }
    for (const q of ['limit=1', 'limit=200', 'limit=', 'cursor=', 'status=', 'q=', 'since=', 'until=']) {
      expect((await get(`/api/predictions?${q}`)).status, q).toBe(200);
    }
  });

  it('takes status lists with spaces, matches q literally, and bounds since/until inclusively', async () => {
    await start();
    const a = prediction({ id: `a${process.pid}x`, status: 'succeeded', model: 'acme/x' });
    const b = prediction({ id: `b${process.pid}x`, status: 'processing', model: 'acme/y' });
    await deliver(a);
    await deliver(b);
    const ids = async (q: string) =>
      ((await get(`/api/predictions?${q}`)).json.data as { id: string }[]).map((x) => x.id).sort();
    expect(await ids('status=succeeded,%20processing')).toEqual([a.id, b.id].sort());
    expect(await ids('status=%20succeeded%20')).toEqual([a.id]);
    expect(await ids('model=acme/x')).toEqual([a.id]);
    expect(await ids('model=acme')).toEqual([]);
    expect(await ids('q=%25')).toEqual([]);
    expect(await ids('q=_')).toEqual([]);
    const at = (await get(`/api/predictions/${String(a.id)}`)).json.last_received_at as string;
    const enc = encodeURIComponent;
    expect(await ids(`since=${enc(at)}&until=${enc(at)}&q=${String(a.id)}`)).toEqual([a.id]);
    const plusOne = new Date(Date.parse(at) + 1).toISOString();
    expect(await ids(`since=${enc(plusOne)}&q=${String(a.id)}`)).toEqual([]);
    // The same instant with an offset.
    const offset = at.replace(/^(\d{4}-\d{2}-\d{2}T)(\d{2})/, (_m, d: string, h: string) => {
      return `${d}${String((Number(h) + 1) % 24).padStart(2, '0')}`;
    });
    if (Number(at.slice(11, 13)) < 23) {
      expect(await ids(`until=${enc(offset.replace('Z', '+01:00'))}&q=${String(a.id)}`)).toEqual([a.id]);
    }
  });

  it('treats an empty X-Forwarded-For as a proxy, and accepts only loopback Host names', async () => {
    await start();
    expectError(await get('/api/predictions', { 'x-forwarded-for': '' }), 403, 'forbidden');
    expectError(await get('/api/predictions', { forwarded: '' }), 403, 'forbidden');
    for (const host of ['localhost', 'LOCALHOST:5000', '127.0.0.1', '127.1.2.3:9', '[::1]'])
      expect((await get('/api/predictions', { host })).status, host).toBe(200);
    for (const host of ['evil.com', 'localhost.evil.com', '127.0.0.1.nip.io', '0.0.0.0', '2130706433'])
      expectError(await get('/api/predictions', { host }), 403, 'forbidden');
  });

  it('with a token: 401 to absent, wrong or non-Bearer credentials, even from loopback', async () => {
    await start({ INLET_ADMIN_TOKEN: 'tok-123' });
    for (const authorization of [
      undefined,
      '',
      'Bearer nope',
      'Basic dG9rLTEyMw==',
      'tok-123',
      'Bearer tok-12',
    ])
      expectError(
        await get('/api/rejections', authorization === undefined ? {} : { authorization }),
        401,
        'unauthorized',
      );
    expect((await get('/api/rejections', { authorization: 'Bearer tok-123' })).status).toBe(200);
    expect((await get('/api/rejections', { authorization: 'bearer tok-123' }, '203.0.113.9')).status).toBe(
      200,
    );
    expect((await get('/healthz', {}, '203.0.113.9')).status).toBe(200);
  });
});

describe('read commands never create a database (CONTRACT §6)', () => {
  it('exits 2 naming the place for a bare path, sqlite: URL and DATABASE_URL', async () => {
    const tmp = tempDir();
    try {
      const bare = join(tmp.dir, 'a.db');
      const viaUrl = join(tmp.dir, 'b.db');
      const viaEnv = join(tmp.dir, 'c.db');
      const runs = await Promise.all([
        runCli(['predictions', '--database', bare]),
        runCli(['predictions', 'show', 'x', '--database', `sqlite:${viaUrl}`]),
        runCli(['events', 'show', 'x'], { DATABASE_URL: viaEnv }),
      ]);
      const places = [bare, viaUrl, viaEnv];
      runs.forEach((run, i) => {
        expect(run.code).toBe(2);
        expect(run.stderr + run.stdout).toContain(places[i]);
        expect(existsSync(places[i]!)).toBe(false);
      });
    } finally {
      tmp.cleanup();
    }
  });
});
