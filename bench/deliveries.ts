import { createHash, createHmac } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import type { IncomingEvent } from '../src/store/types.js';
import type { ReplicateObject } from '../src/replicate/types.js';
import { signWebhook } from '../src/verify/index.js';

export const STATUSES = ['starting', 'processing', 'succeeded'] as const;
export const MODELS = Array.from({ length: 40 }, (_, i) => `bench-owner/model-${i}`);

/** A Replicate-style id: 26 lowercase letters and digits, distinct per (tag, index). */
export function predictionId(tag: string, index: number): string {
  return (tag + index.toString(36)).padStart(26, 'q').slice(-26);
}

const LOG_LINE = 'Using seed: 1234567\n  0%|          | 0/50 [00:00<?, ?it/s]\n';

/**
 * Delivery `seq` of a run: predictions go starting → processing → succeeded, three deliveries each,
 * about 1.5 KB of JSON like Replicate's.
 */
export function predictionBody(tag: string, seq: number): string {
  const index = Math.floor(seq / 3);
  const stage = seq % 3;
  const status = STATUSES[stage]!;
  const id = predictionId(tag, index);
  const version = createHash('sha256')
    .update(String(index % 97))
    .digest('hex');
  const created = new Date(Date.UTC(2026, 10, 27, 12, 0, 0) + index * 1000).toISOString();
  const body = {
    id,
    model: MODELS[index % MODELS.length],
    version,
    input: {
      prompt: `an astronaut riding a horse on mars, hd, dramatic lighting, number ${index}`,
      width: 1024,
      height: 1024,
      num_outputs: 1,
      scheduler: 'K_EULER',
      guidance_scale: 7.5,
      num_inference_steps: 50,
    },
    logs: LOG_LINE.repeat(stage === 0 ? 6 : stage === 1 ? 10 : 12),
    output: stage === 2 ? [`https://replicate.delivery/pbxt/${id}/out-0.png`] : null,
    data_removed: false,
    error: null,
    source: 'api',
    status,
    created_at: created,
    started_at: stage > 0 ? created : null,
    completed_at: stage === 2 ? created : null,
    urls: {
      cancel: `https://api.replicate.com/v1/predictions/${id}/cancel`,
      get: `https://api.replicate.com/v1/predictions/${id}`,
      stream: `https://streaming-api.svc.us.c.replicate.net/v1/streams/${id}`,
      web: `https://replicate.com/p/${id}`,
    },
    metrics: stage === 2 ? { predict_time: 4.213, total_time: 4.9 } : {},
    webhook: 'https://example.com/replicate-webhook',
    webhook_events_filter: ['start', 'output', 'logs', 'completed'],
  };
  return JSON.stringify(body);
}

/**
 * Writes `count` deliveries signed now, one a line (`id TAB timestamp TAB signature TAB hex TAB body`),
 * for the wrk script; `hex` (the tutorial's X-Replicate-Signature) only when asked for. Returns the mean
 * body size in bytes.
 */
export function writeSignedDeliveries(
  path: string,
  count: number,
  secret: string,
  tag: string,
  options: { hex?: boolean } = {},
): number {
  const fd = openSync(path, 'w');
  const timestampSec = Math.floor(Date.now() / 1000);
  let bytes = 0;
  let chunk: string[] = [];
  try {
    for (let seq = 0; seq < count; seq++) {
      const body = predictionBody(tag, seq);
      bytes += Buffer.byteLength(body);
      const headers = signWebhook(body, { secret, id: `msg_${tag}${seq}`, timestampSec });
      const hex = options.hex === true ? createHmac('sha256', secret).update(body).digest('hex') : '';
      chunk.push(
        `${headers['webhook-id']}\t${headers['webhook-timestamp']}\t${headers['webhook-signature']}\t${hex}\t${body}\n`,
      );
      if (chunk.length === 5000) {
        writeSync(fd, chunk.join(''));
        chunk = [];
      }
    }
    if (chunk.length > 0) writeSync(fd, chunk.join(''));
    // Hundreds of MB left dirty would be written back by the kernel ~30 s later, in the middle of a
    // later measurement, and stall the servers' own fsyncs: write them now.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return bytes / count;
}

/** Delivery `seq` as the store receives it, for bulk-loading a database directly. */
export function incomingEvent(tag: string, seq: number, receivedAtMs: number): IncomingEvent {
  const text = predictionBody(tag, seq);
  return {
    key: `msg_${tag}${seq}`,
    scheme: 'standard',
    receivedAtMs,
    webhookTimestampSec: Math.floor(receivedAtMs / 1000),
    headers: {
      'content-type': 'application/json',
      'webhook-id': `msg_${tag}${seq}`,
      'webhook-signature': '[redacted]',
    },
    body: Buffer.from(text),
    object: JSON.parse(text) as ReplicateObject,
  };
}
