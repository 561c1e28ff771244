/* eslint-disable @typescript-eslint/no-explicit-any -- parsed JSON bodies, checked by expect() */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request a test receiver got. */
export interface Received {
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly id: string;
  readonly timestamp: string;
  readonly signature: string;
  readonly body: string;
  readonly json: any;
  readonly atMs: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface Receiver {
  readonly url: string;
  readonly origin: string;
  readonly received: Received[];
  /** Resolves once `done(received)` holds; rejects after `timeoutMs` saying what was seen. */
  waitFor(done: (received: readonly Received[]) => boolean, timeoutMs: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

/** A tiny webhook receiver on a free loopback port; `reply` picks each answer (default 200). */
export async function startReceiver(
  reply: (r: Received) => Reply = () => ({ status: 200 }),
): Promise<Receiver> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown = undefined;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const entry: Received = {
        path: req.url ?? '',
        headers: req.headers,
        id: String(req.headers['webhook-id'] ?? ''),
        timestamp: String(req.headers['webhook-timestamp'] ?? ''),
        signature: String(req.headers['webhook-signature'] ?? ''),
        body,
        json,
        atMs: performance.now(),
      };
      received.push(entry);
      const answer = reply(entry);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body ?? '{"received":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/replicate-webhook`,
    origin,
    received,
    async waitFor(done, timeoutMs, what = 'the expected webhooks') {
      const deadline = performance.now() + timeoutMs;
      while (!done(received)) {
        if (performance.now() > deadline) {
          throw new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${received.length} requests`,
          );
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Rejects when `promise` takes longer than `ms`: every wait in these tests is bounded. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
