import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HeaderBag, SIGNATURE_ERROR_CODES, decodeSecret, signWebhook, verifyWebhook } from './index.js';

const NOW = 1_750_000_000;

// How a header is sent: `effective` is what verification should see once blanks are skipped and trimmed.
const BLANKS: readonly (string | string[] | undefined)[] = [undefined, '', ' ', '\t', [], [''], ['', '  ']];
function send(effective: string | undefined, choice: number, junk: string): string | string[] | undefined {
  if (effective === undefined) return BLANKS[choice % BLANKS.length];
  const forms = [effective, ` ${effective}\t`, ['', effective], [' ', effective, junk], [effective, junk]];
  return forms[choice % forms.length];
}

const ENTRY_KINDS = ['good', 'v2-good', 'outsider', 'other-body', 'other-id', 'garbage'] as const;
const entryArb = fc.record({
  kind: fc.constantFrom(...ENTRY_KINDS),
  secretIndex: fc.nat(),
  text: fc.string(),
});
const HEX_KINDS = ['good', 'outsider', 'decoded-key', 'garbage'] as const;

const secretArb = fc
  .tuple(fc.uint8Array({ minLength: 1, maxLength: 48 }), fc.constantFrom('padded', 'bare', 'unpadded', 'url'))
  .map(([key, form]) => {
    const b64 = Buffer.from(key).toString('base64');
    if (form === 'bare') return b64;
    if (form === 'unpadded') return `whsec_${b64.replace(/=+$/, '')}`;
    if (form === 'url') return `whsec_${Buffer.from(key).toString('base64url')}`;
    return `whsec_${b64}`;
  });

const caseArb = fc.record({
  secrets: fc.array(secretArb, { minLength: 1, maxLength: 3 }),
  outsider: secretArb,
  body: fc.oneof(
    fc.uint8Array({ maxLength: 200 }),
    fc.json({ maxDepth: 2 }).map((j) => new Uint8Array(Buffer.from(j, 'utf8'))),
  ),
  id: fc.option(fc.string({ minLength: 1, maxLength: 30 }), { nil: undefined }),
  timestamp: fc.option(
    fc.oneof(
      fc.integer({ min: -400, max: 400 }).map((skew) => String(NOW + skew)),
      fc.string({ maxLength: 12 }),
      fc.integer({ min: 16, max: 400 }).map((n) => '9'.repeat(n)),
      fc.constantFrom('0', '-1', '1e9', String(NOW) + '.0'),
    ),
    { nil: undefined },
  ),
  entries: fc.option(fc.array(entryArb, { maxLength: 4 }), { nil: undefined }),
  separator: fc.constantFrom(' ', '  ', '\t', ' \t '),
  hex: fc.option(
    fc.record({
      kind: fc.constantFrom(...HEX_KINDS),
      secretIndex: fc.nat(),
      upper: fc.boolean(),
      text: fc.string(),
    }),
    { nil: undefined },
  ),
  acceptHex: fc.boolean(),
  toleranceSec: fc.constantFrom(0, 1, 300),
  extra: fc.dictionary(
    fc
      .string({ unit: fc.constantFrom(...'abcxyz-'.split('')), minLength: 1, maxLength: 6 })
      .map((n) => `x-extra-${n}`),
    fc.oneof(fc.string(), fc.array(fc.string(), { maxLength: 2 })),
    { maxKeys: 3 },
  ),
  sends: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
  junk: fc.string(),
});

type Case = typeof caseArb extends fc.Arbitrary<infer T> ? T : never;

function standardEntry(secret: string, id: string, timestamp: string, body: Uint8Array): string {
  if (
    /^[0-9]+$/.test(timestamp) &&
    Number.isSafeInteger(Number(timestamp)) &&
    String(Number(timestamp)) === timestamp
  ) {
    return signWebhook(body, { secret, id, timestampSec: Number(timestamp) })['webhook-signature'];
  }
  // Timestamps signWebhook cannot produce (they must fail before the signature counts anyway).
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  return `v1,${createHmac('sha256', decodeSecret(secret)!).update(content).digest('base64')}`;
}

/** The expected outcome, from what was generated rather than from any HMAC. */
function model(c: Case, id: string | undefined, entries: string | undefined): string {
  if (id !== undefined && c.timestamp?.trim() && entries !== undefined) {
    const ts = c.timestamp.trim();
    if (!/^[0-9]+$/.test(ts)) return 'malformed_signature';
    if (c.toleranceSec > 0 && !(Math.abs(NOW - Number(ts)) <= c.toleranceSec))
      return 'timestamp_out_of_tolerance';
    if (!Number.isSafeInteger(Number(ts))) return 'malformed_signature';
    return c.entries!.some((e) => e.kind === 'good') ? 'ok' : 'invalid_signature';
  }
  if (c.acceptHex && c.hex !== undefined && !(c.hex.kind === 'garbage' && c.hex.text.trim() === '')) {
    return c.hex.kind === 'good' ? 'ok' : 'invalid_signature';
  }
  return 'missing_signature';
}

describe('verifyWebhook under random requests', () => {
  it('never throws, answers only the four codes, and is ok only for genuine signatures (10,000 runs)', () => {
    const codes: Record<string, number> = {};
    fc.assert(
      fc.property(caseArb, (c) => {
        const { body, secrets } = c;
        // An outsider that happens to equal a configured secret (tiny keys) is not an outsider.
        fc.pre(!secrets.some((s) => s === c.outsider || decodeSecret(s)!.equals(decodeSecret(c.outsider)!)));
        const pick = (i: number) => secrets[i % secrets.length]!;
        // Blank ids count as absent; ids are compared trimmed.
        const id = c.id?.trim() ? c.id.trim() : undefined;
        const signedId = id ?? 'msg_fallback';
        const timestamp = c.timestamp?.trim() ?? String(NOW);
        const otherBody = Buffer.concat([body, Buffer.from([0])]);
        const entries = c.entries?.map((e) => {
          switch (e.kind) {
            case 'good':
              return standardEntry(pick(e.secretIndex), signedId, timestamp, body);
            case 'v2-good':
              return standardEntry(pick(e.secretIndex), signedId, timestamp, body).replace(/^v1,/, 'v2,');
            case 'outsider':
              return standardEntry(c.outsider, signedId, timestamp, body);
            case 'other-body':
              return standardEntry(pick(e.secretIndex), signedId, timestamp, otherBody);
            case 'other-id':
              return standardEntry(pick(e.secretIndex), `${signedId}x`, timestamp, body);
            case 'garbage':
              return e.text;
          }
        });
        const entriesText = entries?.join(c.separator);
        const signature = entriesText?.trim() ? entriesText : undefined;
        let hex: string | undefined;
        if (c.hex !== undefined) {
          const key = {
            good: pick(c.hex.secretIndex),
            outsider: c.outsider,
            'decoded-key': decodeSecret(pick(c.hex.secretIndex))!,
            garbage: undefined,
          }[c.hex.kind];
          hex = key === undefined ? c.hex.text : createHmac('sha256', key).update(body).digest('hex');
          if (c.hex.upper) hex = hex.toUpperCase();
          if (!hex.trim()) hex = undefined;
        }
        const expected = model(c, id, signature);

        const headers: HeaderBag = {
          ...c.extra,
          'webhook-id': send(id, c.sends[0]!, c.junk),
          'webhook-timestamp': send(c.timestamp?.trim() ? c.timestamp : undefined, c.sends[1]!, c.junk),
          'webhook-signature': send(signature, c.sends[2]!, c.junk),
          'x-replicate-signature': send(hex, c.sends[3]!, c.junk),
        };
        const result = verifyWebhook(body, headers, {
          secrets,
          toleranceSec: c.toleranceSec,
          acceptHex: c.acceptHex,
          nowSec: () => NOW,
        });
        const code = result.ok ? 'ok' : result.code;
        codes[code] = (codes[code] ?? 0) + 1;
        expect(['ok', ...SIGNATURE_ERROR_CODES]).toContain(code);
        expect(code).toBe(expected);
        if (result.ok && result.scheme === 'standard') expect(result.key).toBe(id);
        if (!result.ok) {
          expect(result.message.length).toBeGreaterThan(0);
          for (const secret of secrets) expect(result.message).not.toContain(secret);
        }
      }),
      { numRuns: 10_000 },
    );
    for (const code of ['ok', ...SIGNATURE_ERROR_CODES]) expect(codes[code] ?? 0).toBeGreaterThan(200);
  });
});
