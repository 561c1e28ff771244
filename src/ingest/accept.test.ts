import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SECRET } from '../../test/helpers.js';
import { StoreUnavailableError } from '../store/errors.js';
import type { CommitOutcome, IncomingEvent, NewRejection, Store } from '../store/types.js';
import { bodyDeliveryKey, signWebhook } from '../verify/index.js';
import { Ingest, REJECTION_BODY_BYTES, type IngestOptions, type WebhookRequest } from './accept.js';
import { CommitBatcher } from './commit-batcher.js';
import { RejectionLog } from './rejection-log.js';

const NOW_SEC = 1_800_000_000;
const RECEIVED_AT_MS = NOW_SEC * 1000 + 123;

/**
 * Ingest on a fake store: it keeps what was committed (deduping on the key, like a real store) and the
 * rejections recorded; `fail` makes the next commits throw.
 */
function setup(options: Partial<IngestOptions> = {}, commitTimeoutMs = 10_000) {
  const committed: IncomingEvent[] = [];
  const rejections: NewRejection[] = [];
  const state: { fail?: () => Promise<never> } = {};
  const store = {
    capabilities: {
      maxConcurrentCommits: 1,
      multiInstance: false,
      skipLocked: false,
      crossProcessNotify: false,
    },
    commitEvents: async (events: readonly IncomingEvent[]): Promise<CommitOutcome[]> => {
      if (state.fail !== undefined) return state.fail();
      return events.map((event) => {
        const duplicate = committed.some((c) => c.key === event.key);
        if (!duplicate) committed.push(event);
        return { duplicate, applied: !duplicate, conflict: false };
      });
    },
    recordRejections: async (rows: readonly NewRejection[]) => {
      rejections.push(...rows);
    },
    probeWrite: async () => undefined,
  } as unknown as Store;
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
        done();
      },
    }),
  );
  const batcher = new CommitBatcher(store, { commitTimeoutMs, logger });
  const log = new RejectionLog(store, { maxRows: 1000, maxBodyBytes: 1 << 30 }, logger);
  const ingest = new Ingest(
    {
      secrets: [SECRET],
      toleranceSec: 300,
      acceptHexSignature: false,
      insecureSkipVerify: false,
      nowSec: () => NOW_SEC,
      ...options,
    },
    batcher,
    log,
    logger,
  );
  return { ingest, committed, rejections, lines, state, flush: () => log.flush() };
}

let counter = 0;

/** A signed request for `body` (a prediction unless given), as Replicate sends it. */
function signed(
  body: string | Buffer = JSON.stringify({ id: `pred_${++counter}`, status: 'starting' }),
  headers: Record<string, string> = {},
  timestampSec = NOW_SEC,
): WebhookRequest {
  return {
    headers: {
      'content-type': 'application/json',
      ...signWebhook(body, { secret: SECRET, id: `msg_${++counter}`, timestampSec }),
      ...headers,
    },
    body: Buffer.from(body),
    remoteAddress: '203.0.113.9',
    receivedAtMs: RECEIVED_AT_MS,
  };
}

function unsigned(body: string, headers: Record<string, string> = {}): WebhookRequest {
  return {
    headers: { 'content-type': 'application/json', ...headers },
    body: Buffer.from(body),
    remoteAddress: '203.0.113.9',
    receivedAtMs: RECEIVED_AT_MS,
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Ingest.accept', () => {
  it('commits a signed prediction and answers 200, then duplicate for the same delivery', async () => {
    const { ingest, committed, lines } = setup();
    const body = JSON.stringify({ id: 'pred_a', status: 'processing', logs: 'hi' });
    const request = signed(body, { authorization: 'Bearer t' });
    expect(await ingest.accept(request)).toEqual({
      status: 200,
      outcome: 'accepted',
      code: 'ok',
      body: { received: true, duplicate: false },
    });
    expect(committed).toHaveLength(1);
    expect(committed[0]).toMatchObject({
      key: request.headers['webhook-id'],
      scheme: 'standard',
      receivedAtMs: RECEIVED_AT_MS,
      webhookTimestampSec: NOW_SEC,
      object: { id: 'pred_a', status: 'processing', logs: 'hi' },
    });
    expect(committed[0]!.body.equals(Buffer.from(body))).toBe(true);
    expect(committed[0]!.headers).toMatchObject({
      'webhook-signature': '[redacted]',
      authorization: '[redacted]',
      'content-type': 'application/json',
    });
    expect(lines.at(-1)?.msg).toBe('Received webhook for prediction pred_a with status processing');

    expect(await ingest.accept(request)).toEqual({
      status: 200,
      outcome: 'duplicate',
      code: 'ok',
      body: { received: true, duplicate: true },
    });
    expect(committed).toHaveLength(1);
    expect(lines.at(-1)?.msg).toMatch(/^Received duplicate webhook for prediction pred_a/);
  });

  it('answers each refusal with its status and code, and records it', async () => {
    const { ingest, rejections, committed, flush } = setup();
    const prediction = JSON.stringify({ id: 'pred_r', status: 'starting' });
    const cases: [WebhookRequest, number, string][] = [
      [signed(prediction, { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
      [unsigned(prediction), 400, 'missing_signature'],
      [signed(prediction, { 'webhook-timestamp': 'soon' }), 400, 'malformed_signature'],
      [signed(prediction, { 'webhook-signature': 'v1,AAAA' }), 403, 'invalid_signature'],
      [signed(prediction, {}, NOW_SEC - 301), 403, 'timestamp_out_of_tolerance'],
      [signed('{not json'), 400, 'invalid_json'],
      [signed('[1, 2]'), 400, 'invalid_json'],
      [signed(Buffer.from([0x7b, 0xff, 0x7d])), 400, 'invalid_json'],
      [signed('{"id": "", "status": "starting"}'), 422, 'invalid_payload'],
      [signed('{"id": "pred_x"}'), 422, 'invalid_payload'],
    ];
    for (const [request, status, code] of cases) {
      const answer = await ingest.accept(request);
      expect(answer, code).toMatchObject({ status, outcome: 'rejected', code, body: { error: { code } } });
      expect((answer.body as { error: { message: string } }).error.message.length).toBeGreaterThan(0);
    }
    expect(committed).toEqual([]);
    await flush();
    expect(rejections.map((r) => r.code)).toEqual(cases.map(([, , code]) => code));
    expect(rejections[3]).toMatchObject({
      remoteAddress: '203.0.113.9',
      receivedAtMs: RECEIVED_AT_MS,
      message: expect.any(String) as string,
      headers: { 'webhook-signature': '[redacted]' },
    });
  });

  it('keeps an unauthenticated body cut to 64 KiB, and an authenticated one that failed parsing whole', async () => {
    const { ingest, rejections, flush } = setup();
    const big = `{"id": "pred_big", "pad": "${'z'.repeat(100 * 1024)}"`; // not JSON
    await ingest.accept(signed(big, { 'webhook-signature': 'v1,AAAA' }));
    await ingest.accept(signed(big));
    await flush();
    expect(rejections.map((r) => [r.code, r.body.length])).toEqual([
      ['invalid_signature', REJECTION_BODY_BYTES],
      ['invalid_json', Buffer.byteLength(big)],
    ]);
  });

  it('answers 503 storage_unavailable with Retry-After when the commit fails or times out', async () => {
    const { ingest, state } = setup({ retryAfterSec: 7 }, 1000);
    state.fail = () => Promise.reject(new Error('value too long for type character varying'));
    const failed = await ingest.accept(signed());
    expect(failed).toMatchObject({
      status: 503,
      outcome: 'unavailable',
      code: 'storage_unavailable',
      headers: { 'retry-after': '7' },
      body: { error: { code: 'storage_unavailable', message: expect.stringMatching(/failed/) as string } },
    });

    vi.useFakeTimers();
    state.fail = () => Promise.reject(new StoreUnavailableError('database is locked'));
    const answer = ingest.accept(signed());
    await vi.advanceTimersByTimeAsync(1000);
    expect(await answer).toMatchObject({
      status: 503,
      code: 'storage_unavailable',
      headers: { 'retry-after': '7' },
      body: { error: { message: expect.stringMatching(/in time/) as string } },
    });
  });

  it('with insecureSkipVerify keys an unsigned delivery by its webhook-id, or by its body', async () => {
    const { ingest, committed } = setup({ insecureSkipVerify: true });
    const withId = JSON.stringify({ id: 'pred_u1', status: 'starting' });
    expect((await ingest.accept(unsigned(withId, { 'webhook-id': 'msg_plain' }))).status).toBe(200);
    const withoutId = JSON.stringify({ id: 'pred_u2', status: 'starting' });
    expect((await ingest.accept(unsigned(withoutId))).status).toBe(200);
    expect(committed.map((e) => [e.key, e.scheme, e.webhookTimestampSec])).toEqual([
      ['msg_plain', 'unsigned', null],
      [bodyDeliveryKey(Buffer.from(withoutId)), 'unsigned', null],
    ]);
    // A signature that is there is still checked.
    expect((await ingest.accept(signed(withId, { 'webhook-signature': 'v1,AAAA' }))).status).toBe(403);
  });
});

describe('Ingest.reject', () => {
  it('answers a request refused before its body was read, with Allow: POST for a 405, and records it', async () => {
    const { ingest, rejections, flush } = setup();
    const request = { headers: {}, remoteAddress: '198.51.100.1', receivedAtMs: RECEIVED_AT_MS };
    expect(ingest.reject(request, 'method_not_allowed', 'Use POST.')).toEqual({
      status: 405,
      outcome: 'rejected',
      code: 'method_not_allowed',
      headers: { allow: 'POST' },
      body: { error: { code: 'method_not_allowed', message: 'Use POST.' } },
    });
    expect(
      ingest.reject({ ...request, body: Buffer.from('abc') }, 'payload_too_large', 'Too big.'),
    ).toMatchObject({ status: 413, code: 'payload_too_large', headers: {} });
    await flush();
    expect(rejections.map((r) => [r.code, r.remoteAddress, r.body.toString()])).toEqual([
      ['method_not_allowed', '198.51.100.1', ''],
      ['payload_too_large', '198.51.100.1', 'abc'],
    ]);
  });
});

describe('Ingest.ingestEvent', () => {
  const polled = (status: string): IncomingEvent => ({
    key: `poll:pred_p:${status}`,
    scheme: 'poll',
    receivedAtMs: RECEIVED_AT_MS,
    webhookTimestampSec: null,
    headers: {},
    body: Buffer.from(JSON.stringify({ id: 'pred_p', status })),
    object: { id: 'pred_p', status },
  });

  it('commits a delivery that did not come over HTTP through the same batcher, deduping it', async () => {
    const { ingest, committed, lines } = setup();
    const first = await ingest.ingestEvent(polled('succeeded'));
    expect(first).toEqual({ ok: true, outcome: { duplicate: false, applied: true, conflict: false } });
    expect(committed.map((e) => e.key)).toEqual(['poll:pred_p:succeeded']);
    expect(lines.at(-1)?.msg).toBe('Received poll for prediction pred_p with status succeeded');
    const again = await ingest.ingestEvent(polled('succeeded'));
    expect(again).toMatchObject({ ok: true, outcome: { duplicate: true } });
    expect(committed).toHaveLength(1);
  });

  it('answers the commit failure to its caller', async () => {
    const { ingest, state, lines } = setup();
    state.fail = () => Promise.reject(new Error('permission denied for table events'));
    expect(await ingest.ingestEvent(polled('failed'))).toEqual({ ok: false, reason: 'error' });
    expect(lines.at(-1)?.msg).toBe('Could not store polled state of prediction pred_p');
  });
});
