/**
 * The webhook path is served on node:http ahead of Fastify, and through Fastify for `inject()`: the same
 * handler either way. These tests send the same requests both ways and compare the answers, over a real
 * socket on loopback (a bug's 500 over a socket: test/webhook.test.ts).
 */
import { Agent, request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  createTestInlet,
  metricOf,
  prediction,
  signedHeaders,
  type TestInlet,
  WEBHOOK_PATH,
} from './helpers.js';

interface Answer {
  status: number;
  headers: Record<string, string | undefined>;
  body: unknown;
  /** Not compared with inject(), which has no connection. */
  connection?: string | undefined;
}

const KEPT_HEADERS = ['content-type', 'allow', 'retry-after'] as const;

function pick(headers: Record<string, string | string[] | number | undefined>): Answer['headers'] {
  return Object.fromEntries(KEPT_HEADERS.map((name) => [name, headers[name]?.toString()]));
}

function overHttp(
  port: number,
  method: string,
  path: string,
  body: string | undefined,
  headers: Record<string, string>,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, method, path, headers, agent: keepAlive }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        expect(Number(res.headers['content-length'])).toBe(Buffer.byteLength(text));
        resolve({
          status: res.statusCode ?? 0,
          headers: pick(res.headers),
          body: JSON.parse(text),
          connection: res.headers.connection,
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** A keep-alive client, so that a connection the server closes says so. */
const keepAlive = new Agent({ keepAlive: true });
let inlet: TestInlet;
let port: number;
beforeAll(async () => {
  inlet = await createTestInlet({ INLET_MAX_BODY_BYTES: '4096' });
  const address = await inlet.app.listen({ port: 0, host: '127.0.0.1' });
  port = Number(new URL(address).port);
});
afterAll(async () => {
  keepAlive.destroy();
  await inlet.close();
});

describe('the webhook path over a socket and through inject()', () => {
  const signed = (overrides: Record<string, unknown> = {}) => {
    const body = JSON.stringify(prediction(overrides));
    return { body, headers: signedHeaders(body) };
  };

  const cases: [
    string,
    () => { method: string; path?: string; body?: string; headers?: Record<string, string> },
  ][] = [
    ['a signed delivery', () => ({ method: 'POST', ...signed() })],
    [
      'the same path with a query string',
      () => ({ method: 'POST', path: `${WEBHOOK_PATH}?a=1`, ...signed() }),
    ],
    [
      'the same path with one trailing slash',
      () => ({ method: 'POST', path: `${WEBHOOK_PATH}/`, ...signed() }),
    ],
    ['GET', () => ({ method: 'GET' })],
    ['PUT with a body', () => ({ method: 'PUT', body: 'x'.repeat(5000) })],
    [
      'a body over --max-body',
      () => ({ method: 'POST', body: 'x'.repeat(5000), headers: { 'content-type': 'text/plain' } }),
    ],
    [
      'a text/plain body',
      () => ({ method: 'POST', body: 'hello', headers: { 'content-type': 'text/plain' } }),
    ],
    [
      'an unsigned body',
      () => ({ method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } }),
    ],
    [
      'a wrong signature',
      () => {
        const { body, headers } = signed();
        return { method: 'POST', body: `${body} `, headers };
      },
    ],
    ['a POST to another path', () => ({ method: 'POST', path: '/replicate-webhooks', body: '{}' })],
  ];

  it.each(cases)('%s: the same answer both ways', async (_name, make) => {
    const sent = make();
    const path = sent.path ?? WEBHOOK_PATH;
    const headers = { 'content-type': 'application/json', ...sent.headers };
    const { connection: _, ...http } = await overHttp(port, sent.method, path, sent.body, headers);
    // A delivery is answered `duplicate` the second time: inject() gets a new one, signed the same way.
    const again = http.status === 200 ? { ...sent, ...signed() } : sent;
    const injected = await inlet.app.inject({
      method: sent.method as 'POST',
      url: path,
      ...(again.body === undefined ? {} : { payload: again.body }),
      headers: { 'content-type': 'application/json', ...again.headers },
    });
    expect(http).toEqual({
      status: injected.statusCode,
      headers: pick(injected.headers),
      body: injected.json(),
    });
  });

  it('reads a chunked body (no Content-Length) within the limits, and refuses one over --max-body', async () => {
    const { body, headers } = signed();
    const chunked = { ...headers, 'transfer-encoding': 'chunked' };
    expect(await overHttp(port, 'POST', WEBHOOK_PATH, body, chunked)).toMatchObject({
      status: 200,
      body: { received: true, duplicate: false },
      connection: 'keep-alive',
    });
    const big = await overHttp(port, 'POST', WEBHOOK_PATH, 'x'.repeat(5000), chunked);
    expect(big).toMatchObject({ status: 413, body: { error: { code: 'payload_too_large' } } });
    // The rest of a body over the limit is read and dropped, then the connection closes.
    expect(big.connection).toBe('close');
  });

  it('answers 400 bad_request to a body shorter than its Content-Length, and keeps it', async () => {
    const socket = connect(port, '127.0.0.1');
    const text = await new Promise<string>((resolve, reject) => {
      let got = '';
      socket.on('data', (chunk: Buffer) => (got += chunk.toString('utf8')));
      socket.on('error', reject);
      socket.on('close', () => resolve(got));
      socket.write(
        `POST ${WEBHOOK_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"id":`,
      );
      setImmediate(() => socket.end());
    });
    // The client went away: the answer may not reach it, but the rejection is kept.
    expect(text === '' || text.startsWith('HTTP/1.1 400')).toBe(true);
    // The server sees the connection close a moment after the client does.
    await vi.waitFor(async () => {
      await inlet.settled();
      const rejections = (await inlet.app.inject({ url: '/api/rejections' })).json().data as {
        code: string;
      }[];
      expect(rejections.some((r) => r.code === 'bad_request')).toBe(true);
    });
  });
});

describe('a delivery refused because request bodies in memory are at the limit', () => {
  const KIB = 1024;
  let small: TestInlet;
  let smallPort: number;
  const serverSockets: Socket[] = [];
  const clients: Socket[] = [];
  beforeAll(async () => {
    small = await createTestInlet({
      INLET_MAX_BODY_BYTES: String(64 * KIB),
      INLET_MAX_INFLIGHT_BYTES: String(128 * KIB),
    });
    small.app.server.on('connection', (socket: Socket) => serverSockets.push(socket));
    const address = await small.app.listen({ port: 0, host: '127.0.0.1' });
    smallPort = Number(new URL(address).port);
  });
  afterAll(async () => {
    for (const socket of clients) socket.destroy();
    await small.close();
  });

  const metric = (name: string) => metricOf(small, name);
  const head = (length: number, path = WEBHOOK_PATH) =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${length}\r\n\r\n`;
  const open = async () => {
    const socket = connect(smallPort, '127.0.0.1');
    clients.push(socket);
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  };

  beforeAll(async () => {
    // Two senders declare 64 KiB each, send 1 KiB and stall: the 128 KiB budget stays taken.
    for (const stalled of [await open(), await open()]) stalled.write(`${head(64 * KIB)}${'x'.repeat(KIB)}`);
    await vi.waitFor(async () => expect(await metric('inlet_inflight_body_bytes')).toBe(128 * KIB));
  });

  // The webhook handler, and Fastify's hook for every other route (here a POST to the wrong path).
  it.each([WEBHOOK_PATH, '/replicate-webhooks'])(
    '%s: gets its 503, not a reset, though it reads its answer only once its whole body is sent',
    async (path) => {
      const refusedBefore = await metric('inlet_inflight_refused_total');

      const sender = await open();
      const serverSide = serverSockets.at(-1)!;
      const serverClosed = new Promise((resolve) => serverSide.once('close', resolve));
      // Reads nothing until it has sent its whole body, as most HTTP clients do.
      sender.pause();
      const start = `${head(64 * KIB, path)}${'x'.repeat(KIB)}`;
      sender.write(start);
      // Refused at once: the server has sent its answer and its end of the connection.
      await new Promise((resolve) =>
        serverSide.writableFinished ? resolve(null) : serverSide.once('finish', resolve),
      );
      expect(await metric('inlet_inflight_refused_total')).toBe(refusedBefore + 1);
      // The rest of the body still reaches a connection that reads it: the server closes only once the
      // sender has closed its end, with nothing left unread (which would reset the connection).
      sender.end('x'.repeat(63 * KIB));
      await serverClosed;
      expect(serverSide.bytesRead).toBe(start.length + 63 * KIB);
      const received = await new Promise<{ text: string; error?: string }>((resolve) => {
        let text = '';
        sender.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        sender.once('error', (error: NodeJS.ErrnoException) =>
          resolve({ text, error: error.code ?? 'error' }),
        );
        sender.once('close', () => resolve({ text }));
        sender.resume();
      });
      expect(received.error).toBeUndefined();
      expect(received.text).toMatch(/^HTTP\/1\.1 503 /);
      expect(received.text).toContain('retry-after: 2');
      expect(received.text).toContain('"storage_unavailable"');
    },
  );
});
