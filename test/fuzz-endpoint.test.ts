import { createHmac } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ErrorCode, ERROR_STATUS, isErrorCode, WEBHOOK_ERROR_CODES } from '../src/errors.js';
import { openStore } from '../src/store/index.js';
import { signWebhook } from '../src/verify/index.js';
import { createTestInlet, OTHER_SECRET, SECRET, tempDir, type TestInlet } from './helpers.js';

// Property-based fuzzing of the webhook endpoint through inject(): whatever arrives, the answer is one
// of the contract's, and nothing is stored without a valid signature over exactly those bytes.

const PATH = '/replicate-webhook';
const LIMIT = 1024;
const RUNS = Number(process.env.INLET_FUZZ_RUNS ?? 10_000);
const SEED = process.env.INLET_FUZZ_SEED === undefined ? undefined : Number(process.env.INLET_FUZZ_SEED);

const METHODS = ['POST', 'GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'] as const;
const SIGNATURE_MODES = [
  'valid',
  'other-bytes',
  'wrong-secret',
  'stale',
  'partial',
  'garbage',
  'hex',
  'none',
] as const;
type SignatureMode = (typeof SIGNATURE_MODES)[number];

// Printable ASCII: what a header value can carry through Node's HTTP parser.
const headerText = (maxLength: number) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength });
const tokenText = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_'.split('')),
  minLength: 1,
  maxLength: 20,
});

let counter = 0;
function predictionJson(fields: Record<string, unknown>): string {
  counter++;
  return JSON.stringify({ id: `fz${counter}`, model: 'inlet/fuzz', status: 'processing', ...fields });
}

/** A prediction whose JSON is exactly `size` bytes (when it can be). */
function sizedPrediction(size: number): string {
  const base = predictionJson({ pad: '' });
  return base.replace('"pad":""', `"pad":"${'x'.repeat(Math.max(0, size - Buffer.byteLength(base)))}"`);
}

const unicodeText = fc.string({ unit: 'binary', maxLength: 40 });
const bodyArb: fc.Arbitrary<Buffer> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .record({
        status: fc.oneof(
          fc.constantFrom('starting', 'processing', 'succeeded', 'failed', 'canceled'),
          unicodeText,
        ),
        logs: unicodeText,
        output: fc.oneof(fc.constant(null), fc.array(unicodeText, { maxLength: 3 }), unicodeText),
        extra: fc.jsonValue({ maxDepth: 2 }),
      })
      .map((fields) => Buffer.from(predictionJson(fields))),
  },
  {
    weight: 2,
    arbitrary: fc.integer({ min: LIMIT - 6, max: LIMIT + 6 }).map((n) => Buffer.from(sizedPrediction(n))),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: LIMIT + 64 }).map((b) => Buffer.from(b)) },
  {
    // Invalid UTF-8 somewhere inside an otherwise valid prediction.
    weight: 1,
    arbitrary: fc.tuple(fc.constantFrom(0x80, 0xc0, 0xff, 0xed, 0xf8), fc.nat()).map(([byte, at]) => {
      const good = Buffer.from(predictionJson({ logs: 'ab' }));
      const i = good.indexOf('ab') + (at % 2);
      good[i] = byte;
      return good;
    }),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 1, max: 600 }), fc.constantFrom('[', '{"a":'))
      .map(([depth, open]) => {
        const close = open === '[' ? ']' : '}';
        return Buffer.from(
          `{"id":"deep","status":"processing","x":${open.repeat(depth)}1${close.repeat(depth)}}`,
        );
      }),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom('1e999999', '-1e-999999', '123456789012345678901234567890', '-0', '1.0e+308', '0.1e400')
      .map((n) => Buffer.from(`{"id":"big${n}","status":"processing","n":${n}}`)),
  },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        fc.json({ maxDepth: 3 }),
        fc.constantFrom(
          '',
          ' ',
          'null',
          '[]',
          '"x"',
          '{}',
          '{"id":"","status":"x"}',
          '{"id":1,"status":"x"}',
        ),
      )
      .map((s) => Buffer.from(s)),
  },
);

const contentTypeArb = fc.oneof(
  { weight: 2, arbitrary: fc.constant<string | undefined>(undefined) },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'application/json',
      'application/json; charset=utf-8',
      'Application/JSON',
      'text/x+json',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data'),
  },
  { weight: 1, arbitrary: headerText(40) },
);

const caseArb = fc.record({
  method: fc.oneof({ weight: 12, arbitrary: fc.constant('POST' as const) }, fc.constantFrom(...METHODS)),
  body: bodyArb,
  contentType: contentTypeArb,
  mode: fc.oneof(
    { weight: 6, arbitrary: fc.constant<SignatureMode>('valid') },
    { weight: 6, arbitrary: fc.constantFrom(...SIGNATURE_MODES) },
  ),
  skewSec: fc.integer({ min: -250, max: 250 }),
  dropped: fc.constantFrom('webhook-id', 'webhook-timestamp', 'webhook-signature'),
  garbage: fc.record({
    id: fc.option(headerText(30), { nil: undefined }),
    timestamp: fc.option(fc.oneof(headerText(12), fc.integer().map(String)), { nil: undefined }),
    signature: fc.option(headerText(80), { nil: undefined }),
  }),
  // Header names in random casing, some headers sent twice, some extra noise.
  casing: fc.array(fc.boolean(), { minLength: 24, maxLength: 24 }),
  duplicate: fc.oneof(
    { weight: 4, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.tuple(fc.nat(), headerText(20), fc.boolean()) },
  ),
  extra: fc.array(fc.tuple(tokenText, headerText(30)), { maxLength: 3 }),
});
type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function randomCase(name: string, casing: readonly boolean[]): string {
  return [...name].map((c, i) => (casing[i % casing.length] ? c.toUpperCase() : c)).join('');
}

interface Built {
  headers: Record<string, string | string[]>;
  /** The exact bytes a valid signature with the configured secret covers, if any header carries one. */
  signedBody: Buffer | undefined;
  /** Nothing was disturbed: a valid prediction, validly signed, that must be accepted. */
  mustAccept: boolean;
}

function buildRequest(c: Case): Built {
  const now = Math.floor(Date.now() / 1000);
  const id = `msg_fz${++counter}`;
  const sign = (body: Buffer, secret: string, timestampSec: number) =>
    ({ ...signWebhook(body, { secret, id, timestampSec }) }) as Record<string, string>;
  let headers: Record<string, string> = {};
  let signedBody: Buffer | undefined;
  switch (c.mode) {
    case 'valid':
      headers = sign(c.body, SECRET, now + c.skewSec);
      signedBody = c.body;
      break;
    case 'other-bytes':
      headers = sign(Buffer.concat([c.body, Buffer.from(' ')]), SECRET, now);
      break;
    case 'wrong-secret':
      headers = sign(c.body, OTHER_SECRET, now);
      break;
    case 'stale':
      headers = sign(c.body, SECRET, now - 301 - Math.abs(c.skewSec));
      break;
    case 'partial':
      headers = sign(c.body, SECRET, now);
      delete headers[c.dropped];
      break;
    case 'garbage':
      for (const [name, value] of [
        ['webhook-id', c.garbage.id],
        ['webhook-timestamp', c.garbage.timestamp],
        ['webhook-signature', c.garbage.signature],
      ] as const) {
        if (value !== undefined) headers[name] = value;
      }
      break;
    case 'hex':
      headers = { 'x-replicate-signature': createHmac('sha256', SECRET).update(c.body).digest('hex') };
      break;
    case 'none':
      break;
  }
  if (c.contentType !== undefined) headers['content-type'] = c.contentType;
  for (const [name, value] of c.extra) {
    // Noise only: never a header the endpoint reads or one that changes the framing.
    if (
      !/^(webhook-|x-replicate|content-|transfer-|host$|connection$|expect$|te$|trailer$|upgrade$)/.test(name)
    ) {
      headers[`x-${name}`] = value;
    }
  }

  const out: Record<string, string | string[]> = {};
  const names = Object.keys(headers);
  let duplicated = false;
  names.forEach((name, i) => {
    const value = headers[name]!;
    let sent: string | string[] = value;
    if (c.duplicate !== undefined && c.duplicate[0] % names.length === i) {
      sent = c.duplicate[2] ? [value, c.duplicate[1]] : [c.duplicate[1], value];
      duplicated = true;
    }
    out[randomCase(name, c.casing.slice(i))] = sent;
  });

  const text = (() => {
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(c.body);
    } catch {
      return undefined;
    }
  })();
  let isPrediction = false;
  if (text !== undefined) {
    try {
      const parsed: unknown = JSON.parse(text);
      isPrediction =
        typeof parsed === 'object' &&
        parsed !== null &&
        !Array.isArray(parsed) &&
        typeof (parsed as { id?: unknown }).id === 'string' &&
        (parsed as { id: string }).id !== '' &&
        typeof (parsed as { status?: unknown }).status === 'string' &&
        (parsed as { status: string }).status !== '';
    } catch {
      isPrediction = false;
    }
  }
  const jsonType =
    c.contentType === undefined ||
    c.contentType.trim() === '' ||
    /^\s*(application\/json|[a-z0-9!#$&^_.+-]+\/[a-z0-9!#$&^_.+-]+\+json)\s*(;.*)?$/i.test(c.contentType);
  const mustAccept =
    c.method === 'POST' &&
    c.mode === 'valid' &&
    !duplicated &&
    c.body.length <= LIMIT &&
    jsonType &&
    isPrediction;
  return { headers: out, signedBody, mustAccept };
}

let inlet: TestInlet;
let dir: { dir: string; cleanup(): void };

beforeAll(async () => {
  // The fuzz is about answers, not durability: tmpfs keeps thousands of commits cheap.
  dir = existsSync('/dev/shm') ? scratchDir('/dev/shm') : tempDir('inlet-fuzz-');
  const store = await openStore(`sqlite:${join(dir.dir, 'fuzz.db')}`, { mode: 'serve' });
  inlet = await createTestInlet(
    { INLET_MAX_BODY_BYTES: String(LIMIT), INLET_MAX_REJECTIONS: '20', INLET_COMMIT_TIMEOUT_MS: '5000' },
    {},
    store,
  );
});

function scratchDir(parent: string): { dir: string; cleanup(): void } {
  const made = mkdtempSync(join(parent, 'inlet-fuzz-'));
  return { dir: made, cleanup: () => rmSync(made, { recursive: true, force: true }) };
}

afterAll(async () => {
  await inlet?.close();
  dir?.cleanup();
});

describe('fuzzing POST /replicate-webhook', () => {
  it(`answers every request within the contract (${RUNS} cases)`, async () => {
    const seen = { accepted: 0, mustAccept: 0, codes: new Set<string>() };
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const built = buildRequest(c);
        const res = await inlet.app.inject({
          method: c.method,
          url: PATH,
          headers: built.headers,
          ...(c.method === 'GET' || c.method === 'HEAD' ? {} : { payload: c.body }),
        });
        const status = res.statusCode;
        if (status >= 500) {
          expect(status).toBe(503);
        }
        if (c.method === 'HEAD') {
          expect(status).toBe(405);
          return;
        }
        const answer = res.json();
        if (status === 200) {
          expect(answer).toEqual({ received: true, duplicate: expect.any(Boolean) });
          // Stored only with a valid signature over exactly these bytes.
          expect(built.signedBody?.equals(c.body)).toBe(true);
          seen.accepted++;
        } else {
          expect(Object.keys(answer)).toEqual(['error']);
          const { code, message } = answer.error;
          expect(isErrorCode(code), String(code)).toBe(true);
          expect(ERROR_STATUS[code as ErrorCode]).toBe(status);
          expect(typeof message === 'string' && message.trim().length > 0).toBe(true);
          if (status === 503) expect(code).toBe('storage_unavailable');
          if (status === 405) expect(res.headers.allow).toBe('POST');
          seen.codes.add(code);
        }
        if (built.mustAccept) {
          expect(status, res.body).toBe(200);
          seen.mustAccept++;
        }
      }),
      { numRuns: RUNS, ...(SEED === undefined ? {} : { seed: SEED }) },
    );
    // The generator reaches both sides of the contract.
    expect(seen.mustAccept).toBeGreaterThan(RUNS / 20);
    expect(seen.accepted).toBeGreaterThanOrEqual(seen.mustAccept);
    // Every check of §3 but those a request built in memory cannot reach (a failing store, broken HTTP,
    // a server shutting down).
    const unreachable: readonly string[] = ['storage_unavailable', 'bad_request', 'shutting_down'];
    const reachable = WEBHOOK_ERROR_CODES.filter((c) => !unreachable.includes(c));
    for (const code of reachable) {
      if (RUNS >= 2000) expect(seen.codes, code).toContain(code);
    }
    // Still alive and storing after all of it.
    const body = Buffer.from(predictionJson({ status: 'succeeded' }));
    const after = await inlet.app.inject({
      method: 'POST',
      url: PATH,
      payload: body,
      headers: {
        'content-type': 'application/json',
        ...signWebhook(body, {
          secret: SECRET,
          id: 'msg_after',
          timestampSec: Math.floor(Date.now() / 1000),
        }),
      },
    });
    expect(after.statusCode).toBe(200);
  });
});
