import { createHmac } from 'node:crypto';
import { Agent, request } from 'node:http';
import { decodeSecret } from '../src/verify/index.js';
import { predictionBody } from './deliveries.js';

/**
 * Many clients at once, each POSTing validly signed deliveries of a given size (a prediction whose logs
 * fill it out), back to back, for a while: how much memory a receiver takes when bodies near its size
 * limit arrive faster than it can store them. Statuses are counted, not judged: refusing some is what
 * keeps the memory bounded. A refused delivery (503 or 429, or the connection closed before an answer)
 * is sent again, the same bytes and signature, after a short pause, as a webhook sender retries; a
 * pause and not `retry-after`, so the receiver stays at its limit for the whole run.
 */

export interface BigBodyOptions {
  url: URL;
  secret: string;
  /** Bytes of each body. */
  bodyBytes: number;
  connections: number;
  seconds: number;
  tag: string;
}

export interface BigBodyResult {
  /** Answers by status code. */
  statuses: Map<number, number>;
  /** Requests that ended without an answer (the connection closed first). */
  noAnswer: number;
  /** Distinct deliveries answered 2xx. */
  stored: number;
  seconds: number;
}

const RETRY_PAUSE_MS = 100;
const TIMEOUT_MS = 60_000;

interface Delivery {
  headers: Record<string, string | number>;
  parts: Buffer[];
}

/** ASCII without quotes or backslashes, so any length of it is a valid JSON string's content. */
const LOG_TEXT = 'Denoising step 0017 of 0050, 3.42 it/s, seed 1234567; ';

export async function sendBigBodies(o: BigBodyOptions): Promise<BigBodyResult> {
  const key = decodeSecret(o.secret);
  if (key === undefined) throw new Error('the bench secret does not decode');
  // One shared filler for every body: the clients hold a few hundred bytes each, not a body each.
  const filler = Buffer.from(LOG_TEXT.repeat(Math.ceil(o.bodyBytes / LOG_TEXT.length)));
  const agent = new Agent({ keepAlive: true, maxSockets: o.connections });
  const result: BigBodyResult = { statuses: new Map(), noAnswer: 0, stored: 0, seconds: o.seconds };
  let seq = 0;

  function delivery(): Delivery {
    const n = seq++;
    const object = JSON.parse(predictionBody(o.tag, n)) as { logs: string };
    object.logs = '\u0000';
    const [head, tail] = JSON.stringify(object)
      .split('\\u0000')
      .map((s) => Buffer.from(s)) as [Buffer, Buffer];
    const parts = [head, filler.subarray(0, o.bodyBytes - head.length - tail.length), tail];
    const id = `msg_${o.tag}${n}`;
    const timestamp = String(Math.floor(Date.now() / 1000));
    const hmac = createHmac('sha256', key!).update(`${id}.${timestamp}.`);
    for (const part of parts) hmac.update(part);
    return {
      headers: {
        'content-type': 'application/json',
        'content-length': o.bodyBytes,
        'webhook-id': id,
        'webhook-timestamp': timestamp,
        'webhook-signature': `v1,${hmac.digest('base64')}`,
      },
      parts,
    };
  }

  /** The status answered, or undefined when the connection ended without one. */
  function post(d: Delivery): Promise<number | undefined> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (status: number | undefined) => {
        if (settled) return;
        settled = true;
        resolve(status);
      };
      const req = request(o.url, { method: 'POST', agent, headers: d.headers }, (res) => {
        // An answer before the whole body was sent (a refusal) counts; the reset that may follow does not.
        settle(res.statusCode);
        res.resume();
      });
      req.setTimeout(TIMEOUT_MS, () => req.destroy(new Error('timed out')));
      req.once('error', () => settle(undefined));
      for (const part of d.parts.slice(0, -1)) req.write(part);
      req.end(d.parts.at(-1));
    });
  }

  const end = performance.now() + o.seconds * 1000;
  const client = async () => {
    while (performance.now() < end) {
      const d = delivery();
      for (;;) {
        const status = await post(d);
        if (status === undefined) result.noAnswer++;
        else result.statuses.set(status, (result.statuses.get(status) ?? 0) + 1);
        if (status !== undefined && status >= 200 && status < 300) result.stored++;
        const refused = status === undefined || status === 503 || status === 429;
        if (!refused || performance.now() >= end) break;
        await new Promise((resolve) => setTimeout(resolve, RETRY_PAUSE_MS));
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: o.connections }, client));
  result.seconds = (performance.now() - started) / 1000;
  agent.destroy();
  return result;
}
