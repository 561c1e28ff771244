import { createHash, createHmac, type KeyObject } from 'node:crypto';

/** Standard Webhooks v1: HMAC-SHA256 over the bytes `id.timestamp.body`, the body never decoded. */
export function standardDigest(
  key: KeyObject | Buffer,
  id: string,
  timestamp: string,
  body: Uint8Array,
): Buffer {
  // Two updates, not five: each is a call into C++, and the prefix is short (≈ 0.7 µs a delivery less).
  return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/** The tutorial's scheme: HMAC-SHA256 over the raw body alone. */
export function hexDigest(key: KeyObject | Buffer, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(body).digest();
}

/** The delivery key of a request without a `webhook-id`. */
export function bodyDeliveryKey(body: Uint8Array): string {
  return `sha256:${createHash('sha256').update(body).digest('hex')}`;
}
