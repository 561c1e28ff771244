import { randomBytes } from 'node:crypto';
import { standardDigest } from './hmac.js';
import { decodeSecret, secretProblem } from './secret.js';
import type { SignedHeaders } from './types.js';

export interface SignOptions {
  readonly secret: string;
  readonly id: string;
  readonly timestampSec: number;
}

/** Why an id cannot travel as a header value unchanged, or `undefined` when it can. */
export function messageIdProblem(id: string): string | undefined {
  if (id.trim() === '') return 'must not be empty';
  if (id !== id.trim()) return 'must not start or end with whitespace';
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return 'must not hold control characters';
  }
  return undefined;
}

/**
 * Signs a body the way Replicate does (Standard Webhooks v1). Throws `RangeError` on an unusable secret,
 * id or timestamp: those are the caller's mistakes, not outcomes.
 */
export function signWebhook(body: Uint8Array | string, options: SignOptions): SignedHeaders {
  const key = decodeSecret(options.secret);
  if (key === undefined) {
    const problem = secretProblem(options.secret) ?? 'it is not usable';
    throw new RangeError(`signWebhook: the secret must be "whsec_" followed by base64; ${problem}.`);
  }
  const idProblem = messageIdProblem(options.id);
  if (idProblem !== undefined) throw new RangeError(`signWebhook: the id ${idProblem}.`);
  if (!Number.isSafeInteger(options.timestampSec) || options.timestampSec < 0) {
    throw new RangeError(
      `signWebhook: timestampSec must be a whole number >= 0; got ${options.timestampSec}.`,
    );
  }
  const timestamp = String(options.timestampSec);
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const signature = standardDigest(key, options.id, timestamp, bytes).toString('base64');
  return { 'webhook-id': options.id, 'webhook-timestamp': timestamp, 'webhook-signature': `v1,${signature}` };
}

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const MESSAGE_ID_CHARS = 27;

/** A fresh `msg_` id shaped like Replicate's (27 random base62 characters, about 160 bits). */
export function newMessageId(): string {
  let out = 'msg_';
  while (out.length < 4 + MESSAGE_ID_CHARS) {
    for (const byte of randomBytes(32)) {
      // 248 = 4 × 62: rejecting the rest keeps every character equally likely.
      if (byte < 248 && out.length < 4 + MESSAGE_ID_CHARS) out += BASE62[byte % 62];
    }
  }
  return out;
}
