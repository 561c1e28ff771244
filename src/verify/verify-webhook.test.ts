import { createHash, createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type HeaderBag,
  type VerifyOptions,
  type VerifyResult,
  bodyDeliveryKey,
  createVerifier,
  decodeSecret,
  hasSignatureHeaders,
  newMessageId,
  signWebhook,
  verifyWebhook,
} from './index.js';

// Public Standard Webhooks / Svix vectors (replicate-protocol.md).
const VECTORS = [
  {
    secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
    id: 'msg_p5jXN8AQM9LWM0D4loKWxJek',
    timestamp: 1614265330,
    body: '{"test": 2432232314}',
    signature: 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=',
  },
  {
    secret: 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
    id: 'msg_27UH4WbU6Z5A5EzD8u03UvzRbpk',
    timestamp: 1649367553,
    body: '{"email":"test@example.com","username":"test_user"}',
    signature: 'v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=',
  },
] as const;

const [V0, V1] = VECTORS;
const NOW = 1_700_000_000;
const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OTHER_SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const BODY = Buffer.from('{"id":"p1","status":"succeeded","output":["https://replicate.delivery/x.png"]}');

function options(overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return { secrets: [SECRET], toleranceSec: 300, nowSec: () => NOW, ...overrides };
}

/** Independent of the code under test: one HMAC over the concatenated bytes. */
function referenceSignature(secret: string, id: string, timestamp: string, body: Uint8Array): string {
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  return `v1,${createHmac('sha256', key).update(content).digest('base64')}`;
}

function signed(body: Uint8Array = BODY, secret = SECRET, id = 'msg_test', timestampSec = NOW) {
  return signWebhook(body, { secret, id, timestampSec });
}

function vectorHeaders(v: (typeof VECTORS)[number]): Record<string, string> {
  return { 'webhook-id': v.id, 'webhook-timestamp': String(v.timestamp), 'webhook-signature': v.signature };
}

function vectorOptions(v: (typeof VECTORS)[number], overrides: Partial<VerifyOptions> = {}): VerifyOptions {
  return { secrets: [v.secret], toleranceSec: 300, nowSec: () => v.timestamp, ...overrides };
}

function codeOf(result: VerifyResult): string {
  return result.ok ? 'ok' : result.code;
}

describe('public test vectors', () => {
  for (const v of VECTORS) {
    it(`verifies ${v.id}`, () => {
      const result = verifyWebhook(Buffer.from(v.body), vectorHeaders(v), vectorOptions(v));
      expect(result).toEqual({ ok: true, scheme: 'standard', key: v.id, timestampSec: v.timestamp });
    });

    it(`signs ${v.id} to the published signature`, () => {
      const headers = signWebhook(v.body, { secret: v.secret, id: v.id, timestampSec: v.timestamp });
      expect(headers).toEqual(vectorHeaders(v));
      expect(referenceSignature(v.secret, v.id, String(v.timestamp), Buffer.from(v.body))).toBe(v.signature);
    });

    it(`rejects ${v.id} with the other vector's secret`, () => {
      const other = v === V0 ? V1 : V0;
      const result = verifyWebhook(
        Buffer.from(v.body),
        vectorHeaders(v),
        vectorOptions(v, { secrets: [other.secret] }),
      );
      expect(codeOf(result)).toBe('invalid_signature');
    });
  }

  it('accepts a bare base64 secret and an unpadded signature', () => {
    const headers = { ...vectorHeaders(V0), 'webhook-signature': V0.signature.replace(/=+$/, '') };
    const result = verifyWebhook(
      Buffer.from(V0.body),
      headers,
      vectorOptions(V0, { secrets: [V0.secret.slice(6)] }),
    );
    expect(result.ok).toBe(true);
  });

  it('is not fooled by the doc bug that keys the HMAC with the base64 text itself', () => {
    const wrongKey = createHmac('sha256', V0.secret.slice(6))
      .update(`${V0.id}.${V0.timestamp}.${V0.body}`)
      .digest('base64');
    const headers = { ...vectorHeaders(V0), 'webhook-signature': `v1,${wrongKey}` };
    expect(codeOf(verifyWebhook(Buffer.from(V0.body), headers, vectorOptions(V0)))).toBe('invalid_signature');
  });
});

describe('missing_signature', () => {
  const complete = signed();
  for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature'] as const) {
    for (const [label, value] of [
      ['absent', undefined],
      ['empty', ''],
      ['blank', '  \t '],
      ['an empty array', []],
      ['an array of blanks', ['', ' ']],
    ] as const) {
      it(`when ${name} is ${label}`, () => {
        const headers: HeaderBag = { ...complete, [name]: value };
        const result = verifyWebhook(BODY, headers, options());
        expect(result).toMatchObject({ ok: false, code: 'missing_signature' });
        if (!result.ok) expect(result.message).toContain(name);
      });
    }
  }

  it('when nothing is signed at all', () => {
    expect(codeOf(verifyWebhook(BODY, {}, options()))).toBe('missing_signature');
    expect(codeOf(verifyWebhook(BODY, { 'content-type': 'application/json' }, options()))).toBe(
      'missing_signature',
    );
  });

  it('when only the hex header is present but the hex scheme is off', () => {
    const hex = createHmac('sha256', SECRET).update(BODY).digest('hex');
    expect(codeOf(verifyWebhook(BODY, { 'x-replicate-signature': hex }, options()))).toBe(
      'missing_signature',
    );
  });

  it('comes before a malformed timestamp', () => {
    const headers = { 'webhook-timestamp': 'soon', 'webhook-signature': 'garbage' };
    expect(codeOf(verifyWebhook(BODY, headers, options()))).toBe('missing_signature');
  });
});

describe('header arrays', () => {
  it('uses the first non-empty value of each header', () => {
    const h = signed();
    const headers: HeaderBag = {
      'webhook-id': ['', h['webhook-id'], 'msg_other'],
      'webhook-timestamp': [' ', h['webhook-timestamp']],
      'webhook-signature': ['', h['webhook-signature'], 'v1,garbage'],
    };
    expect(verifyWebhook(BODY, headers, options())).toMatchObject({ ok: true, key: 'msg_test' });
  });

  it('does not look past the first non-empty value', () => {
    const h = signed();
    const headers: HeaderBag = { ...h, 'webhook-signature': ['v1,garbage', h['webhook-signature']] };
    expect(codeOf(verifyWebhook(BODY, headers, options()))).toBe('invalid_signature');
  });
});

describe('malformed_signature', () => {
  for (const timestamp of [
    'soon',
    '-1',
    '+1700000000',
    '1.5',
    '1e9',
    '0x10',
    '1700000000s',
    '١٧٠٠',
    '17 00',
  ]) {
    it(`for webhook-timestamp ${JSON.stringify(timestamp)}`, () => {
      const headers = { ...signed(), 'webhook-timestamp': timestamp };
      expect(codeOf(verifyWebhook(BODY, headers, options()))).toBe('malformed_signature');
    });
  }

  it('comes before the clock and the signature', () => {
    const headers = { 'webhook-id': 'x', 'webhook-timestamp': 'old', 'webhook-signature': 'garbage' };
    expect(codeOf(verifyWebhook(BODY, headers, options({ toleranceSec: 0 })))).toBe('malformed_signature');
  });

  it('trims a padded timestamp and signs the trimmed text', () => {
    const headers = { ...signed(), 'webhook-timestamp': `  ${NOW}\t` };
    expect(verifyWebhook(BODY, headers, options())).toMatchObject({ ok: true, timestampSec: NOW });
  });

  it('signs the timestamp text as sent, leading zeros included', () => {
    const timestamp = `000${NOW}`;
    const headers = {
      'webhook-id': 'msg_z',
      'webhook-timestamp': timestamp,
      'webhook-signature': referenceSignature(SECRET, 'msg_z', timestamp, BODY),
    };
    expect(verifyWebhook(BODY, headers, options())).toMatchObject({ ok: true, timestampSec: NOW });
    const plain = { ...headers, 'webhook-timestamp': String(NOW) };
    expect(codeOf(verifyWebhook(BODY, plain, options()))).toBe('invalid_signature');
  });
});

describe('timestamp_out_of_tolerance', () => {
  const cases: [string, number, number, string][] = [
    ['exactly at the past boundary', NOW - 300, 300, 'ok'],
    ['one second past the past boundary', NOW - 301, 300, 'timestamp_out_of_tolerance'],
    ['exactly at the future boundary', NOW + 300, 300, 'ok'],
    ['one second past the future boundary', NOW + 301, 300, 'timestamp_out_of_tolerance'],
    ['a year old with tolerance 0', NOW - 365 * 86400, 0, 'ok'],
    ['a year ahead with tolerance 0', NOW + 365 * 86400, 0, 'ok'],
    ['at the epoch with tolerance 0', 0, 0, 'ok'],
    ['at the epoch', 0, 300, 'timestamp_out_of_tolerance'],
    ['a day old with tolerance of a day', NOW - 86400, 86400, 'ok'],
  ];
  for (const [label, timestampSec, toleranceSec, expected] of cases) {
    it(label, () => {
      const headers = signed(BODY, SECRET, 'msg_t', timestampSec);
      const result = verifyWebhook(BODY, headers, options({ toleranceSec }));
      expect(codeOf(result)).toBe(expected);
      if (result.ok) expect(result).toMatchObject({ scheme: 'standard', timestampSec });
    });
  }

  it('says which direction and by how much', () => {
    const past = verifyWebhook(BODY, signed(BODY, SECRET, 'a', NOW - 1000), options());
    const future = verifyWebhook(BODY, signed(BODY, SECRET, 'a', NOW + 1000), options());
    expect(past.ok ? '' : past.message).toMatch(/1000 seconds in the past/);
    expect(future.ok ? '' : future.message).toMatch(/1000 seconds in the future/);
  });

  it('comes before the signature check', () => {
    const headers = {
      'webhook-id': 'x',
      'webhook-timestamp': String(NOW - 301),
      'webhook-signature': 'garbage',
    };
    expect(codeOf(verifyWebhook(BODY, headers, options()))).toBe('timestamp_out_of_tolerance');
  });

  it('survives huge digit strings', () => {
    for (const timestamp of ['9'.repeat(20), '9'.repeat(400), `1${'0'.repeat(5000)}`]) {
      const headers = { 'webhook-id': 'x', 'webhook-timestamp': timestamp, 'webhook-signature': 'v1,x' };
      const result = verifyWebhook(BODY, headers, options());
      expect(codeOf(result)).toBe('timestamp_out_of_tolerance');
      if (!result.ok) expect(result.message).toMatch(/far in the future/);
      // With the clock check off a timestamp that is not a usable Unix time is still refused.
      expect(codeOf(verifyWebhook(BODY, headers, options({ toleranceSec: 0 })))).toBe('malformed_signature');
    }
  });

  it('reads the clock on every call', () => {
    let now = NOW;
    const verify = createVerifier(options({ nowSec: () => now }));
    const headers = signed();
    expect(codeOf(verify(BODY, headers))).toBe('ok');
    now += 301;
    expect(codeOf(verify(BODY, headers))).toBe('timestamp_out_of_tolerance');
  });

  it('defaults to the system clock', () => {
    const headers = signed(BODY, SECRET, 'msg_now', Math.floor(Date.now() / 1000));
    expect(codeOf(verifyWebhook(BODY, headers, { secrets: [SECRET], toleranceSec: 300 }))).toBe('ok');
    const old = signed(BODY, SECRET, 'msg_now', Math.floor(Date.now() / 1000) - 3600);
    expect(codeOf(verifyWebhook(BODY, old, { secrets: [SECRET], toleranceSec: 300 }))).toBe(
      'timestamp_out_of_tolerance',
    );
  });
});

describe('the webhook-signature list', () => {
  // An id whose signature holds both '+' and '/', so url-safe base64 of it differs.
  const id = Array.from({ length: 1000 }, (_, i) => `msg_${i}`).find((candidate) =>
    /\+.*\/|\/.*\+/.test(signed(BODY, SECRET, candidate)['webhook-signature']),
  )!;
  const base = signed(BODY, SECRET, id);
  const good = base['webhook-signature'];
  const wrong = signed(BODY, OTHER_SECRET, id)['webhook-signature'];
  const withSignature = (value: string) =>
    verifyWebhook(BODY, { ...base, 'webhook-signature': value }, options());

  it.each([
    ['odd spacing', `  ${wrong}   ${good}  `],
    ['tabs and newlines', `\t${wrong}\t\t${good}\n`],
    ['the valid entry first', `${good} ${wrong} v1,garbage`],
    ['the valid entry last', `v2,abc ${wrong} v1a,xyz ${good}`],
    ['the valid entry in the middle', `${wrong} ${good} ${wrong}`],
    ['an unpadded valid entry', good.replace(/=$/, '')],
  ])('accepts %s', (_label, value) => {
    expect(codeOf(withSignature(value))).toBe('ok');
  });

  const digest = good.slice(3);
  const nonCanonical = `${digest.slice(0, 42)}${String.fromCharCode(digest.charCodeAt(42) ^ 1)}=`;
  it.each([
    ['a wrong secret', wrong],
    ['a non-v1 version with a valid digest', `v2,${digest}`],
    ['an upper-case version', `V1,${digest}`],
    ['no version', digest],
    ['a version and no signature', 'v1,'],
    ['a bare v1', 'v1'],
    ['garbage', 'garbage'],
    ['non-base64 characters', `v1,${digest.slice(0, 40)}!!!=`],
    ['a truncated signature', good.slice(0, -5)],
    ['an extra character', `${good}A`],
    ['too much padding', `${good}=`],
    ['url-safe base64 of the digest', `v1,${Buffer.from(digest, 'base64').toString('base64url')}`],
    ['hex of the digest', `v1,${Buffer.from(digest, 'base64').toString('hex')}`],
    ['a trailing comma part', `${good},extra`],
    ['a semicolon separator', `${wrong};${good}`],
    ['a comma separator', `${wrong},${good}`],
    ['non-canonical trailing bits', `v1,${nonCanonical}`],
  ])('rejects %s as invalid_signature', (_label, value) => {
    expect(codeOf(withSignature(value))).toBe('invalid_signature');
  });

  it('uses the same id, timestamp and body that were signed', () => {
    expect(codeOf(verifyWebhook(BODY, base, options()))).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, { ...base, 'webhook-id': 'msg_other' }, options()))).toBe(
      'invalid_signature',
    );
    expect(codeOf(verifyWebhook(BODY, { ...base, 'webhook-timestamp': String(NOW + 1) }, options()))).toBe(
      'invalid_signature',
    );
    expect(codeOf(verifyWebhook(Buffer.from(`${BODY.toString()} `), base, options()))).toBe(
      'invalid_signature',
    );
    expect(codeOf(verifyWebhook(new Uint8Array(0), base, options()))).toBe('invalid_signature');
  });
});

describe('secrets', () => {
  it('accepts any configured secret (rotation), in any order', () => {
    const headers = signed();
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [OTHER_SECRET, SECRET] })))).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [SECRET, OTHER_SECRET] })))).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [OTHER_SECRET] })))).toBe(
      'invalid_signature',
    );
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [] })))).toBe('invalid_signature');
  });

  it('matches any secret against any entry', () => {
    const third = `whsec_${randomBytes(24).toString('base64')}`;
    const value = `${signed(BODY, OTHER_SECRET)['webhook-signature']} ${signed(BODY, third)['webhook-signature']}`;
    const headers = { ...signed(), 'webhook-signature': value };
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [SECRET, third] })))).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [SECRET] })))).toBe('invalid_signature');
  });

  it('skips unusable secrets and still uses the others', () => {
    const result = verifyWebhook(BODY, signed(), options({ secrets: ['', 'whsec_', 'not base64!', SECRET] }));
    expect(codeOf(result)).toBe('ok');
  });

  it('decodes padded, unpadded and url-safe secrets alike', () => {
    const key = Buffer.from([0xfb, 0xff, 0xbf, ...randomBytes(28)]); // 31 bytes: padded, with + and /
    const padded = `whsec_${key.toString('base64')}`;
    expect(padded).toMatch(/=$/);
    expect(padded).toMatch(/[+/]/);
    const headers = signed(BODY, padded);
    for (const variant of [
      padded,
      padded.replace(/=+$/, ''),
      `whsec_${key.toString('base64url')}`,
      key.toString('base64'),
    ]) {
      expect(decodeSecret(variant)).toEqual(key);
      expect(codeOf(verifyWebhook(BODY, headers, options({ secrets: [variant] })))).toBe('ok');
    }
  });

  it('decodeSecret refuses what cannot be a key', () => {
    for (const bad of ['', 'whsec_', 'whsec_not base64', 'whsec_abc===', 'whsec_a$b', '=']) {
      expect(decodeSecret(bad)).toBeUndefined();
    }
  });
});

describe('raw bytes', () => {
  it('verifies non-UTF-8 bodies byte for byte, and any flipped byte fails', () => {
    const body = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xed, 0xa0, 0x80, 0x7b, 0x7d]);
    const headers = signed(body);
    expect(headers['webhook-signature']).toBe(referenceSignature(SECRET, 'msg_test', String(NOW), body));
    expect(codeOf(verifyWebhook(body, headers, options()))).toBe('ok');
    for (let i = 0; i < body.length; i++) {
      const flipped = Buffer.from(body);
      flipped[i] = flipped[i]! ^ 0x01;
      expect(codeOf(verifyWebhook(flipped, headers, options()))).toBe('invalid_signature');
    }
    // What a decode-then-encode round trip would have verified instead:
    const lossy = Buffer.from(body.toString('utf8'), 'utf8');
    expect(codeOf(verifyWebhook(lossy, headers, options()))).toBe('invalid_signature');
  });

  it('keeps a byte-order mark as part of the body', () => {
    const withBom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), BODY]);
    const headers = signed(withBom);
    expect(codeOf(verifyWebhook(withBom, headers, options()))).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, headers, options()))).toBe('invalid_signature');
    expect(codeOf(verifyWebhook(BODY, signed(BODY), options()))).toBe('ok');
  });

  it('takes any Uint8Array view, not only Buffers', () => {
    const backing = new Uint8Array([1, 2, ...BODY, 3]);
    const view = backing.subarray(2, 2 + BODY.length);
    expect(codeOf(verifyWebhook(view, signed(), options()))).toBe('ok');
  });

  it('signs a string as its UTF-8 bytes', () => {
    const text = '{"emoji":"🦀","bom":"\uFEFF","nul":"\u0000"}';
    expect(signWebhook(text, { secret: SECRET, id: 'm', timestampSec: NOW })).toEqual(
      signWebhook(Buffer.from(text, 'utf8'), { secret: SECRET, id: 'm', timestampSec: NOW }),
    );
  });
});

describe('hex scheme (X-Replicate-Signature)', () => {
  const hexOf = (key: string | Buffer, body: Uint8Array = BODY) =>
    createHmac('sha256', key).update(body).digest('hex');
  const hexOptions = options({ acceptHex: true });
  const sha = `sha256:${createHash('sha256').update(BODY).digest('hex')}`;

  it('keys the HMAC with the whole secret string, whsec_ prefix included', () => {
    const result = verifyWebhook(BODY, { 'x-replicate-signature': hexOf(SECRET) }, hexOptions);
    expect(result).toEqual({ ok: true, scheme: 'hex', key: sha, timestampSec: null });
    expect(codeOf(verifyWebhook(BODY, { 'x-replicate-signature': hexOf(SECRET.slice(6)) }, hexOptions))).toBe(
      'invalid_signature',
    );
    expect(
      codeOf(verifyWebhook(BODY, { 'x-replicate-signature': hexOf(decodeSecret(SECRET)!) }, hexOptions)),
    ).toBe('invalid_signature');
  });

  it('accepts upper-case hex and surrounding spaces', () => {
    expect(
      codeOf(verifyWebhook(BODY, { 'x-replicate-signature': hexOf(SECRET).toUpperCase() }, hexOptions)),
    ).toBe('ok');
    expect(codeOf(verifyWebhook(BODY, { 'x-replicate-signature': ` ${hexOf(SECRET)} ` }, hexOptions))).toBe(
      'ok',
    );
  });

  it.each([
    ['one digit short', (h: string) => h.slice(0, 63)],
    ['one digit long', (h: string) => `${h}0`],
    ['a non-hex character', (h: string) => `${h.slice(0, 63)}g`],
    ['a sha256= prefix', (h: string) => `sha256=${h}`],
    ['a flipped digit', (h: string) => `${h.slice(0, 63)}${h.endsWith('0') ? '1' : '0'}`],
    ['base64 instead of hex', (h: string) => Buffer.from(h, 'hex').toString('base64')],
  ])('rejects %s as invalid_signature', (_label, mutate) => {
    const result = verifyWebhook(BODY, { 'x-replicate-signature': mutate(hexOf(SECRET)) }, hexOptions);
    expect(codeOf(result)).toBe('invalid_signature');
  });

  it('accepts any configured secret', () => {
    const headers = { 'x-replicate-signature': hexOf(OTHER_SECRET) };
    expect(
      codeOf(verifyWebhook(BODY, headers, options({ acceptHex: true, secrets: [SECRET, OTHER_SECRET] }))),
    ).toBe('ok');
  });

  it('has no timestamp, so tolerance does not apply', () => {
    const result = verifyWebhook(
      BODY,
      { 'x-replicate-signature': hexOf(SECRET) },
      { ...hexOptions, nowSec: () => 0 },
    );
    expect(codeOf(result)).toBe('ok');
  });

  it('is used when the standard set is incomplete', () => {
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-signature': '',
      'x-replicate-signature': hexOf(SECRET),
    };
    expect(verifyWebhook(BODY, headers, hexOptions)).toMatchObject({ ok: true, scheme: 'hex' });
  });

  it('loses to a complete standard set, whatever it holds', () => {
    const badStandard = { ...signed(BODY, OTHER_SECRET), 'x-replicate-signature': hexOf(SECRET) };
    expect(codeOf(verifyWebhook(BODY, badStandard, hexOptions))).toBe('invalid_signature');
    const oldStandard = { ...signed(BODY, SECRET, 'm', NOW - 1000), 'x-replicate-signature': hexOf(SECRET) };
    expect(codeOf(verifyWebhook(BODY, oldStandard, hexOptions))).toBe('timestamp_out_of_tolerance');
    const goodStandard = { ...signed(), 'x-replicate-signature': 'garbage' };
    expect(verifyWebhook(BODY, goodStandard, hexOptions)).toMatchObject({ ok: true, scheme: 'standard' });
  });

  it('is off unless asked for', () => {
    expect(codeOf(verifyWebhook(BODY, { 'x-replicate-signature': hexOf(SECRET) }, options()))).toBe(
      'missing_signature',
    );
    expect(codeOf(verifyWebhook(BODY, { 'x-replicate-signature': '' }, hexOptions))).toBe(
      'missing_signature',
    );
  });
});

describe('messages', () => {
  it('are sentences that never repeat a secret or a signature', () => {
    const good = signed();
    const bags: HeaderBag[] = [
      {},
      { ...good, 'webhook-timestamp': 'x' },
      { ...good, 'webhook-timestamp': '1' },
      {
        ...good,
        'webhook-signature': signed(BODY, `whsec_${randomBytes(32).toString('base64')}`)['webhook-signature'],
      },
      { ...good, 'webhook-signature': 'hello' },
      { 'x-replicate-signature': 'ab'.repeat(32) },
      { 'x-replicate-signature': 'zz' },
    ];
    for (const headers of bags) {
      const result = verifyWebhook(
        BODY,
        headers,
        options({ acceptHex: true, secrets: [SECRET, OTHER_SECRET] }),
      );
      expect(result.ok).toBe(false);
      if (result.ok) continue;
      expect(result.message).toMatch(/^[A-Z].*\.$/);
      for (const secret of [SECRET, OTHER_SECRET, SECRET.slice(6), OTHER_SECRET.slice(6)]) {
        expect(result.message).not.toContain(secret);
      }
      for (const value of Object.values(headers)) {
        if (typeof value === 'string' && value.length > 2) expect(result.message).not.toContain(value);
      }
    }
  });
});

describe('helpers', () => {
  it('hasSignatureHeaders looks at the signature and timestamp headers, not webhook-id', () => {
    expect(hasSignatureHeaders({})).toBe(false);
    expect(hasSignatureHeaders({ 'webhook-id': 'msg_1', 'content-type': 'application/json' })).toBe(false);
    expect(
      hasSignatureHeaders({
        'webhook-signature': '',
        'webhook-timestamp': ' ',
        'x-replicate-signature': [''],
      }),
    ).toBe(false);
    expect(hasSignatureHeaders({ 'webhook-signature': 'v1,x' })).toBe(true);
    expect(hasSignatureHeaders({ 'webhook-timestamp': '1' })).toBe(true);
    expect(hasSignatureHeaders({ 'x-replicate-signature': ['', 'ab'] })).toBe(true);
  });

  it('bodyDeliveryKey is the sha256 of the bytes', () => {
    expect(bodyDeliveryKey(Buffer.from('abc'))).toBe(
      'sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('newMessageId makes distinct msg_ ids', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newMessageId()));
    expect(ids.size).toBe(1000);
    for (const id of ids) expect(id).toMatch(/^msg_[0-9A-Za-z]{27}$/);
  });

  it('signWebhook refuses what it cannot sign', () => {
    const ok = { secret: SECRET, id: 'msg_1', timestampSec: NOW };
    expect(() => signWebhook(BODY, { ...ok, secret: 'nope!' })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, id: '' })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, id: ' msg_1' })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, id: 'msg\n1' })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, timestampSec: -1 })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, timestampSec: 1.5 })).toThrow(RangeError);
    expect(() => signWebhook(BODY, { ...ok, timestampSec: Number.NaN })).toThrow(RangeError);
  });

  it('refuses a negative or non-finite tolerance', () => {
    expect(() => verifyWebhook(BODY, {}, options({ toleranceSec: -1 }))).toThrow(RangeError);
    expect(() => createVerifier(options({ toleranceSec: Number.NaN }))).toThrow(RangeError);
  });
});

describe('createVerifier and the key cache', () => {
  it('agrees with verifyWebhook', () => {
    const verify = createVerifier(options({ acceptHex: true }));
    const bags: HeaderBag[] = [
      signed(),
      signed(BODY, OTHER_SECRET),
      {},
      { ...signed(), 'webhook-timestamp': 'x' },
    ];
    for (const headers of bags) {
      expect(verify(BODY, headers)).toEqual(verifyWebhook(BODY, headers, options({ acceptHex: true })));
    }
  });

  it('notices when a secrets array it has seen is changed in place', () => {
    const secrets = [SECRET];
    const opts = options({ secrets });
    expect(codeOf(verifyWebhook(BODY, signed(), opts))).toBe('ok');
    secrets[0] = OTHER_SECRET;
    expect(codeOf(verifyWebhook(BODY, signed(), opts))).toBe('invalid_signature');
    expect(codeOf(verifyWebhook(BODY, signed(BODY, OTHER_SECRET), opts))).toBe('ok');
  });
});
