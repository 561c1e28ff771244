import type { OutboundMessage } from './deliverer.js';

/** The message body every destination gets (CONTRACT §9): `{type, timestamp, data}`. */
export function brokerMessageBody(message: Pick<OutboundMessage, 'type' | 'recordedAtMs' | 'data'>): string {
  return JSON.stringify({
    type: message.type,
    timestamp: new Date(message.recordedAtMs).toISOString(),
    data: message.data,
  });
}
