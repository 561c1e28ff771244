import { createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { HEX_SIGNATURE, WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP, headerValue } from './headers.js';
import { bodyDeliveryKey, hexDigest, standardDigest } from './hmac.js';
import { decodeSecret } from './secret.js';
import type { HeaderBag, SignatureErrorCode, VerifyOptions, VerifyResult } from './types.js';

export type Verifier = (body: Uint8Array, headers: HeaderBag) => VerifyResult;

interface PreparedKeys {
  /** Base64-decoded `whsec_` secrets; unusable ones are left out. */
  readonly standard: readonly KeyObject[];
  /** The UTF-8 bytes of each whole secret string, prefix included (the tutorial's hex scheme). */
  readonly hex: readonly KeyObject[];
}

interface Settings {
  readonly toleranceSec: number;
  readonly acceptHex: boolean;
  readonly nowSec: () => number;
}

// Canonical base64 of 32 bytes: the last character carries 2 unused bits, which must be zero.
const V1_SIGNATURE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?$/;
const HEX_SIGNATURE_VALUE = /^[0-9a-fA-F]{64}$/;
const DECIMAL = /^[0-9]+$/;
const WHITESPACE = /\s+/;

function systemNowSec(): number {
  return Math.floor(Date.now() / 1000);
}

function prepareKeys(secrets: readonly string[]): PreparedKeys {
  const standard: KeyObject[] = [];
  const hex: KeyObject[] = [];
  for (const secret of secrets) {
    const key = decodeSecret(secret);
    if (key !== undefined) standard.push(createSecretKey(key));
    if (secret !== '') hex.push(createSecretKey(Buffer.from(secret, 'utf8')));
  }
  return { standard, hex };
}

function settingsOf(options: VerifyOptions): Settings {
  const { toleranceSec } = options;
  if (!Number.isFinite(toleranceSec) || toleranceSec < 0) {
    throw new RangeError(`toleranceSec must be a finite number of seconds >= 0; got ${toleranceSec}.`);
  }
  return { toleranceSec, acceptHex: options.acceptHex === true, nowSec: options.nowSec ?? systemNowSec };
}

/** Prepares the keys once; the returned function does one HMAC per secret per request. */
export function createVerifier(options: VerifyOptions): Verifier {
  const keys = prepareKeys(options.secrets);
  const settings = settingsOf(options);
  return (body, headers) => check(keys, settings, body, headers);
}

const keyCache = new WeakMap<
  readonly string[],
  { readonly secrets: readonly string[]; readonly keys: PreparedKeys }
>();

function cachedKeys(secrets: readonly string[]): PreparedKeys {
  const hit = keyCache.get(secrets);
  // The copy guards against a caller mutating the array it passed before.
  if (
    hit !== undefined &&
    hit.secrets.length === secrets.length &&
    hit.secrets.every((s, i) => s === secrets[i])
  ) {
    return hit.keys;
  }
  const keys = prepareKeys(secrets);
  keyCache.set(secrets, { secrets: [...secrets], keys });
  return keys;
}

/** Checks the signature rows of CONTRACT §3 against the raw body bytes. Never throws for any request. */
export function verifyWebhook(body: Uint8Array, headers: HeaderBag, options: VerifyOptions): VerifyResult {
  return check(cachedKeys(options.secrets), settingsOf(options), body, headers);
}

function fail(code: SignatureErrorCode, message: string): VerifyResult {
  return { ok: false, code, message };
}

function check(keys: PreparedKeys, settings: Settings, body: Uint8Array, headers: HeaderBag): VerifyResult {
  const id = headerValue(headers, WEBHOOK_ID);
  const timestamp = headerValue(headers, WEBHOOK_TIMESTAMP);
  const signature = headerValue(headers, WEBHOOK_SIGNATURE);
  // A complete standard set is the one verified, whatever else is present.
  if (id !== undefined && timestamp !== undefined && signature !== undefined) {
    return checkStandard(keys.standard, settings, body, id, timestamp, signature);
  }
  if (settings.acceptHex) {
    const hex = headerValue(headers, HEX_SIGNATURE);
    if (hex !== undefined) return checkHex(keys.hex, body, hex);
  }
  const absent = [
    id === undefined ? WEBHOOK_ID : undefined,
    timestamp === undefined ? WEBHOOK_TIMESTAMP : undefined,
    signature === undefined ? WEBHOOK_SIGNATURE : undefined,
  ].filter((name) => name !== undefined);
  const alternative = settings.acceptHex ? ' (or an X-Replicate-Signature header)' : '';
  return fail(
    'missing_signature',
    `The request is not signed: missing ${absent.join(', ')}. A signed delivery carries webhook-id, ` +
      `webhook-timestamp and webhook-signature${alternative}.`,
  );
}

function checkStandard(
  keys: readonly KeyObject[],
  settings: Settings,
  body: Uint8Array,
  id: string,
  timestamp: string,
  signature: string,
): VerifyResult {
  if (!DECIMAL.test(timestamp)) {
    return fail('malformed_signature', 'The webhook-timestamp header is not a whole number of Unix seconds.');
  }
  // Huge digit strings become Infinity or lose precision: either way they fall outside any tolerance.
  const timestampSec = Number(timestamp);
  if (settings.toleranceSec > 0) {
    const ageSec = settings.nowSec() - timestampSec;
    if (!(Math.abs(ageSec) <= settings.toleranceSec)) {
      return fail('timestamp_out_of_tolerance', describeSkew(ageSec, settings.toleranceSec));
    }
  }
  if (!Number.isSafeInteger(timestampSec)) {
    return fail(
      'malformed_signature',
      'The webhook-timestamp header is too large to be a Unix time in seconds.',
    );
  }
  const candidates = parseV1Entries(signature);
  if (candidates.length > 0) {
    for (const key of keys) {
      const expected = standardDigest(key, id, timestamp, body);
      for (const candidate of candidates) {
        if (timingSafeEqual(expected, candidate))
          return { ok: true, scheme: 'standard', key: id, timestampSec };
      }
    }
  }
  return fail(
    'invalid_signature',
    candidates.length > 0
      ? 'No v1 signature in the webhook-signature header matches a configured secret.'
      : 'The webhook-signature header holds no well-formed v1 signature.',
  );
}

/** Space-separated `v1,<base64>` entries; other versions and malformed entries are skipped. */
function parseV1Entries(header: string): Buffer[] {
  const entries: Buffer[] = [];
  for (const raw of header.split(WHITESPACE)) {
    // A repeated header line reaches us joined with ", ": the comma belongs to no entry.
    const entry = raw.endsWith(',') ? raw.slice(0, -1) : raw;
    if (!entry.startsWith('v1,')) continue;
    const encoded = entry.slice(3);
    if (V1_SIGNATURE.test(encoded)) entries.push(Buffer.from(encoded, 'base64'));
  }
  return entries;
}

function describeSkew(ageSec: number, toleranceSec: number): string {
  const limit = `at most ${toleranceSec} seconds of clock skew are allowed`;
  const seconds = Math.abs(ageSec);
  if (!Number.isSafeInteger(Math.round(seconds)) || seconds > 1e12) {
    return `The webhook-timestamp header is far ${ageSec > 0 ? 'in the past' : 'in the future'}; ${limit}.`;
  }
  const amount = Math.round(seconds);
  return `The webhook-timestamp header is ${amount} seconds ${ageSec > 0 ? 'in the past' : 'in the future'}; ${limit}.`;
}

function checkHex(keys: readonly KeyObject[], body: Uint8Array, value: string): VerifyResult {
  if (HEX_SIGNATURE_VALUE.test(value)) {
    const given = Buffer.from(value, 'hex');
    for (const key of keys) {
      if (timingSafeEqual(hexDigest(key, body), given)) {
        return { ok: true, scheme: 'hex', key: bodyDeliveryKey(body), timestampSec: null };
      }
    }
    return fail('invalid_signature', 'The X-Replicate-Signature header does not match a configured secret.');
  }
  return fail('invalid_signature', 'The X-Replicate-Signature header is not a 64-digit hex HMAC-SHA256.');
}
