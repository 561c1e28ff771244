import { randomBytes } from 'node:crypto';
import type { IncomingEvent } from './types.js';

/**
 * The delivery a readiness probe writes through the commit path and never keeps (rolled back, or
 * deleted in the same transaction): no sender made it, so its key and object id are Inlet's own.
 */
export function readinessProbeEvent(nowMs = Date.now()): IncomingEvent {
  const id = `inlet_readiness_probe_${randomBytes(8).toString('hex')}`;
  return {
    key: id,
    scheme: 'unsigned',
    receivedAtMs: nowMs,
    webhookTimestampSec: null,
    headers: {},
    body: Buffer.from('{}'),
    object: { id, status: 'starting' },
  };
}
