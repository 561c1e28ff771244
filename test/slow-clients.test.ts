import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prediction, SECRET, signedHeaders, tempDir } from './helpers.js';
import { type RunningServer, startServe, stop } from './process-helpers.js';

// Real sockets against a real `inlet serve`: a client that drips its request a byte at a time is cut
// off by the header or request timeout, while other clients keep being served.

const HEADERS_TIMEOUT_MS = 1000;
const REQUEST_TIMEOUT_MS = 2000;
const DRIP_MS = 250;
const PATH = '/replicate-webhook';

let server: RunningServer;
const tmp = tempDir('inlet-slow-');

beforeAll(async () => {
  server = await startServe(['--database', `sqlite:${join(tmp.dir, 'inlet.db')}`], {
    REPLICATE_WEBHOOK_SECRET: SECRET,
    INLET_HEADERS_TIMEOUT_MS: String(HEADERS_TIMEOUT_MS),
    INLET_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS),
    INLET_LOG_LEVEL: 'warn',
  });
});

afterAll(async () => {
  if (server) expect(await stop(server)).toBe(0);
  tmp.cleanup();
});

interface SlowResult {
  /** Milliseconds from connecting until the server closed the connection. */
  closedAfterMs: number;
  /** Bytes the client managed to send before that. */
  sent: number;
  /** What the server wrote back, if anything. */
  response: string;
}

/** Sends `head` at once, then `drip` one byte every DRIP_MS; resolves when the server closes. */
function slowClient(head: string, drip: string, giveUpMs: number): Promise<SlowResult> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket: Socket = connect(server.port, '127.0.0.1');
    let response = '';
    let sent = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server never cut off a slow client (sent ${sent} bytes in ${giveUpMs} ms)`));
    }, giveUpMs);
    socket.on('connect', () => {
      if (head !== '') socket.write(head);
      sent += head.length;
      timer = setInterval(() => {
        if (sent - head.length >= drip.length || socket.destroyed) return;
        socket.write(drip[sent - head.length] ?? '');
        sent++;
      }, DRIP_MS);
    });
    socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearInterval(timer);
      clearTimeout(giveUp);
      resolve({ closedAfterMs: Date.now() - started, sent, response });
    });
  });
}

async function deliver(): Promise<{ status: number; ms: number }> {
  const body = JSON.stringify(prediction({ status: 'processing' }));
  const started = Date.now();
  const res = await fetch(`${server.base}${PATH}`, {
    method: 'POST',
    headers: signedHeaders(body),
    body,
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return { status: res.status, ms: Date.now() - started };
}

describe('slow clients against inlet serve', () => {
  it('cuts off clients that drip headers, drip a body or send nothing, while serving others', async () => {
    const longHeader = `X-Slow: ${'a'.repeat(200)}\r\n`;
    const body = JSON.stringify(prediction());
    const slow = Promise.all([
      // Headers one byte at a time: never finishes within the headers timeout.
      slowClient(`POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n`, longHeader, 15_000),
      // Complete headers, then the body one byte at a time: cut by the request timeout.
      slowClient(
        `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
        body,
        15_000,
      ),
      // Connects and says nothing.
      slowClient('', '', 15_000),
    ]);

    // Meanwhile, ordinary deliveries keep being answered promptly.
    const served: { status: number; ms: number }[] = [];
    const deadline = Date.now() + REQUEST_TIMEOUT_MS + 1000;
    while (Date.now() < deadline) {
      served.push(await deliver());
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const [headers, bodyDrip, silent] = await slow;

    expect(served.length).toBeGreaterThan(10);
    for (const r of served) expect(r.status).toBe(200);
    expect(Math.max(...served.map((r) => r.ms))).toBeLessThan(1000);

    // Cut off after the timeout (plus Node's checking interval), long before the drip could finish.
    expect(headers.closedAfterMs).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(headers.closedAfterMs).toBeLessThan(HEADERS_TIMEOUT_MS + 1500);
    expect(headers.sent).toBeLessThan(
      `POST ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n`.length + longHeader.length,
    );
    expect(headers.response).toMatch(/^HTTP\/1\.1 408 /);

    expect(bodyDrip.closedAfterMs).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(bodyDrip.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);
    expect(bodyDrip.response).toMatch(/^HTTP\/1\.1 408 /);

    expect(silent.closedAfterMs).toBeLessThan(REQUEST_TIMEOUT_MS + 1500);

    // Still healthy afterwards.
    expect((await deliver()).status).toBe(200);
    const ready = await fetch(`${server.base}/readyz`, { signal: AbortSignal.timeout(5000) });
    expect(ready.status).toBe(200);
  });
});
