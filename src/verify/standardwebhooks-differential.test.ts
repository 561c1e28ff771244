import fc from 'fast-check';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signWebhook, verifyWebhook } from './index.js';

// The reference library decodes the body as UTF-8 and JSON-parses it after a match, and splits the
// signature header on single spaces: the cases stay where it is exact (valid UTF-8 JSON, one space).
const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:'.split('');
const BASE64_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'.split('');
const TAMPERS = ['none', 'body', 'id', 'signature', 'timestamp'] as const;

const caseArb = fc.record({
  key: fc.uint8Array({ minLength: 1, maxLength: 64 }),
  prefixed: fc.boolean(),
  id: fc.string({ unit: fc.constantFrom(...ID_CHARS), minLength: 1, maxLength: 40 }),
  skewSec: fc.integer({ min: -240, max: 240 }),
  body: fc.json({ stringUnit: 'binary', maxDepth: 3 }),
  decoys: fc.array(fc.uint8Array({ minLength: 32, maxLength: 32 }), { maxLength: 2 }),
  tamper: fc.constantFrom(...TAMPERS),
  position: fc.nat(),
  replacement: fc.nat(),
});

/** Replaces one character (a whole code point) with a different one from `alphabet`. */
function flip(
  text: string,
  position: number,
  replacement: number,
  alphabet: readonly string[],
  from = 0,
  to?: number,
) {
  const chars = Array.from(text);
  const end = to ?? chars.length;
  const index = from + (position % (end - from));
  const original = chars[index];
  const choices = alphabet.filter((c) => c !== original);
  chars[index] = choices[replacement % choices.length]!;
  return chars.join('');
}

function referenceAccepts(secret: string, body: string, headers: Record<string, string>): boolean {
  try {
    new Webhook(secret).verify(body, headers);
    return true;
  } catch (error) {
    if (error instanceof WebhookVerificationError) return false;
    throw error;
  }
}

describe('differential: standardwebhooks', () => {
  it('agrees on signing, valid deliveries and tampered ones (3,000+ cases)', () => {
    const seen = Object.fromEntries(TAMPERS.map((t) => [t, 0]));
    fc.assert(
      fc.property(caseArb, (c) => {
        const secret = `${c.prefixed ? 'whsec_' : ''}${Buffer.from(c.key).toString('base64')}`;
        const timestampSec = Math.floor(Date.now() / 1000) + c.skewSec;
        const signed = signWebhook(c.body, { secret, id: c.id, timestampSec });
        expect(signed['webhook-signature']).toBe(
          new Webhook(secret).sign(c.id, new Date(timestampSec * 1000), c.body),
        );

        const decoys = c.decoys.map((d) => `v1,${Buffer.from(d).toString('base64')}`);
        let signature = signed['webhook-signature'];
        let { body, id } = c;
        let timestamp = signed['webhook-timestamp'];
        switch (c.tamper) {
          case 'body':
            body = flip(body, c.position, c.replacement, ['a', '0', ' ', '"', '{', 'é', '🦀']);
            break;
          case 'id':
            id = flip(id, c.position, c.replacement, ID_CHARS);
            break;
          case 'signature':
            signature = flip(signature, c.position, c.replacement, BASE64_CHARS, 3, 46);
            break;
          case 'timestamp':
            timestamp = String(timestampSec + 1 + (c.position % 50));
            break;
          case 'none':
            break;
        }
        const headers = {
          'webhook-id': id,
          'webhook-timestamp': timestamp,
          'webhook-signature': [...decoys, signature].join(' '),
        };
        const ours = verifyWebhook(Buffer.from(body, 'utf8'), headers, {
          secrets: [secret],
          toleranceSec: 300,
        });
        const theirs = referenceAccepts(secret, body, headers);
        expect(ours.ok).toBe(theirs);
        expect(ours.ok).toBe(c.tamper === 'none');
        if (!ours.ok) expect(ours.code).toBe('invalid_signature');
        seen[c.tamper]!++;
      }),
      { numRuns: 3500 },
    );
    for (const tamper of TAMPERS) expect(seen[tamper]).toBeGreaterThan(300);
  });

  it('agrees on the public vectors', () => {
    const vectors = [
      [
        'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        'msg_p5jXN8AQM9LWM0D4loKWxJek',
        1614265330,
        '{"test": 2432232314}',
      ],
      [
        'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD',
        'msg_27UH4WbU6Z5A5EzD8u03UvzRbpk',
        1649367553,
        '{"email":"test@example.com","username":"test_user"}',
      ],
    ] as const;
    for (const [secret, id, timestampSec, body] of vectors) {
      expect(signWebhook(body, { secret, id, timestampSec })['webhook-signature']).toBe(
        new Webhook(secret).sign(id, new Date(timestampSec * 1000), body),
      );
    }
  });
});
