import { createHash } from 'node:crypto';
import type { ReplicateObject } from '../replicate/types.js';
import type { IncomingEvent } from '../store/types.js';

/** `poll:<id>:<sha256 hex of the raw body>`: an unchanged answer is a duplicate (CONTRACT §11). */
export function pollDeliveryKey(id: string, body: Buffer): string {
  return `poll:${id}:${createHash('sha256').update(body).digest('hex')}`;
}

/** An answer of `GET /predictions/{id}` as a delivery: folded like a webhook, `scheme: "poll"`. */
export function pollEvent(object: ReplicateObject, body: Buffer, receivedAtMs: number): IncomingEvent {
  return {
    key: pollDeliveryKey(object.id, body),
    scheme: 'poll',
    receivedAtMs,
    webhookTimestampSec: null,
    headers: { 'content-type': 'application/json' },
    body,
    object,
  };
}
