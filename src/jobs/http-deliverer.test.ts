import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { afterEach, describe, expect, it } from 'vitest';
import type { OutboundMessage } from './deliverer.js';
import { DestinationSchema } from './destination-config.js';
import {
  createTestMessage,
  HttpDeliverer,
  type HttpDelivererOptions,
  type HttpDestination,
  inletVersion,
  messageBody,
  parseRetryAfter,
} from './http-deliverer.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

interface Received {
  headers: IncomingMessage['headers'];
  body: string;
  remotePort: number | undefined;
}

type Reply = (res: ServerResponse, req: IncomingMessage) => void;

/** A real receiver on loopback: answers each request with the next reply (the last one repeats). */
async function receiver(...replies: Reply[]) {
  const received: Received[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        remotePort: req.socket.remotePort,
      });
      const reply = replies[Math.min(received.length - 1, replies.length - 1)] ?? ok;
      reply(res, req);
    });
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  servers.push(server);
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    port,
    received,
    connections: () => connections,
  };
}

const ok: Reply = (res) => res.end('ok');
const status =
  (code: number, headers: Record<string, string> = {}, body = ''): Reply =>
  (res) => {
    res.writeHead(code, headers).end(body);
  };

const servers: Server[] = [];
const deliverers: HttpDeliverer[] = [];

afterEach(async () => {
  await Promise.all(deliverers.splice(0).map((d) => d.close()));
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

function destination(url: string, overrides: Partial<Record<string, unknown>> = {}): HttpDestination {
  const parsed = DestinationSchema.parse({ name: 'app', url, allowPrivateNetwork: true, ...overrides });
  return { ...parsed, secret: SECRET };
}

function deliverer(dest: HttpDestination, options: HttpDelivererOptions = {}) {
  const d = new HttpDeliverer(dest, options);
  deliverers.push(d);
  return d;
}

function message(overrides: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    id: 'msg_2Vx1y3TjJ0kPqL9fZs8wR4mN6bH',
    consumer: 'app',
    type: 'prediction.completed',
    objectId: 'p1',
    transitionId: 'tr_1',
    attempt: 1,
    recordedAtMs: Date.parse('2026-11-27T13:38:07.123Z'),
    data: { id: 'p1', status: 'succeeded', output: ['https://x/1.png'] },
    ...overrides,
  };
}

const never = new AbortController().signal;

/** Verifies a received request the way a receiver would, with the standardwebhooks package. */
function verify(r: Received, secret = SECRET): unknown {
  return new Webhook(secret).verify(r.body, {
    'webhook-id': r.headers['webhook-id'] as string,
    'webhook-timestamp': r.headers['webhook-timestamp'] as string,
    'webhook-signature': r.headers['webhook-signature'] as string,
  });
}

describe('HttpDeliverer', () => {
  it('POSTs the signed message body with its headers; a 2xx is delivered', async () => {
    const rx = await receiver(status(204));
    const d = deliverer(destination(rx.url, { headers: { 'x-env': 'test', authorization: 'Bearer t' } }));
    const result = await d.deliver(message(), never);
    expect(result).toMatchObject({ outcome: 'delivered', status: 204 });
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    const [r] = rx.received;
    expect(r!.headers['content-type']).toBe('application/json');
    expect(r!.headers['user-agent']).toBe(`Inlet/${inletVersion()}`);
    expect(r!.headers['x-env']).toBe('test');
    expect(r!.headers.authorization).toBe('Bearer t');
    expect(r!.headers['webhook-id']).toBe('msg_2Vx1y3TjJ0kPqL9fZs8wR4mN6bH');
    expect(Math.abs(Number(r!.headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(5);
    expect(JSON.parse(r!.body)).toEqual({
      type: 'prediction.completed',
      timestamp: '2026-11-27T13:38:07.123Z',
      data: { id: 'p1', status: 'succeeded', output: ['https://x/1.png'] },
    });
    expect(verify(r!)).toEqual(JSON.parse(r!.body));
  });

  it('signs every attempt with the same webhook-id and the attempt’s own time', async () => {
    const rx = await receiver(status(500), status(502), status(503), ok);
    let now = Date.now();
    const d = deliverer(destination(rx.url), { nowMs: () => now });
    const outcomes: string[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      outcomes.push((await d.deliver(message({ attempt }), never)).outcome);
      now += 1000;
    }
    expect(outcomes).toEqual(['retry', 'retry', 'retry', 'delivered']);
    expect(new Set(rx.received.map((r) => r.headers['webhook-id']))).toEqual(
      new Set(['msg_2Vx1y3TjJ0kPqL9fZs8wR4mN6bH']),
    );
    const stamps = rx.received.map((r) => Number(r.headers['webhook-timestamp']));
    expect(new Set(stamps).size).toBe(4);
    // standardwebhooks checks the timestamp against the real clock: the last is within its 5 minutes.
    for (const r of rx.received) expect(() => verify(r)).not.toThrow();
    expect(() => verify(rx.received[0]!, 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD')).toThrow();
  });

  it('keeps connections alive between attempts', async () => {
    const rx = await receiver(ok);
    const d = deliverer(destination(rx.url));
    for (let i = 0; i < 5; i++) await d.deliver(message(), never);
    expect(rx.received).toHaveLength(5);
    expect(rx.connections()).toBe(1);
  });

  it('reports other statuses as retries, with the start of the answer', async () => {
    const rx = await receiver(status(500, {}, 'database\n  is down'));
    const result = await deliverer(destination(rx.url)).deliver(message(), never);
    expect(result).toMatchObject({ outcome: 'retry', status: 500, error: 'HTTP 500: database is down' });
  });

  it('disables on 410 Gone, keeping the reason', async () => {
    const rx = await receiver(status(410, {}, 'endpoint removed'));
    const result = await deliverer(destination(rx.url)).deliver(message(), never);
    expect(result).toMatchObject({
      outcome: 'disable',
      status: 410,
      reason: 'HTTP 410 Gone: endpoint removed',
    });
  });

  it('does not follow redirects: a 3xx is a failure', async () => {
    const target = await receiver(ok);
    const rx = await receiver(status(307, { location: target.url }));
    const result = await deliverer(destination(rx.url)).deliver(message(), never);
    expect(result).toMatchObject({ outcome: 'retry', status: 307 });
    expect(result.outcome === 'retry' && result.error).toBe(
      `HTTP 307 redirect to ${target.url} (redirects are not followed)`,
    );
    expect(target.received).toHaveLength(0);
  });

  it('passes Retry-After on as retryAfterMs (seconds or an HTTP date)', async () => {
    const now = Date.parse('2026-11-27T13:38:07.000Z');
    const rx = await receiver(
      status(429, { 'retry-after': '120' }),
      status(503, { 'retry-after': 'Fri, 27 Nov 2026 13:40:07 GMT' }),
      status(503, { 'retry-after': 'soon' }),
    );
    const d = deliverer(destination(rx.url), { nowMs: () => now });
    expect(await d.deliver(message(), never)).toMatchObject({ outcome: 'retry', retryAfterMs: 120_000 });
    expect(await d.deliver(message(), never)).toMatchObject({ outcome: 'retry', retryAfterMs: 120_000 });
    const third = await d.deliver(message(), never);
    expect(third.outcome).toBe('retry');
    expect(third).not.toHaveProperty('retryAfterMs');
  });

  it('gives up an attempt after timeoutMs', async () => {
    const rx = await receiver(() => undefined);
    const result = await deliverer(destination(rx.url, { timeoutMs: 100 })).deliver(message(), never);
    expect(result).toMatchObject({ outcome: 'retry', error: 'timed out after 100 ms' });
    expect(result.durationMs).toBeGreaterThanOrEqual(90);
  });

  it('times out an answer whose body never ends', async () => {
    const rx = await receiver((res) => {
      res.writeHead(200);
      res.write('partial');
    });
    const result = await deliverer(destination(rx.url, { timeoutMs: 100 })).deliver(message(), never);
    expect(result).toMatchObject({ outcome: 'retry', error: 'timed out after 100 ms' });
  });

  it('reports a connection error as a retry', async () => {
    const rx = await receiver(ok);
    const url = rx.url;
    servers.pop()!.close();
    await new Promise((r) => setTimeout(r, 0));
    const result = await deliverer(destination(url)).deliver(message(), never);
    expect(result.outcome).toBe('retry');
    expect(result.outcome === 'retry' && result.error).toMatch(/ECONNREFUSED/);
  });

  it('stops an attempt when its signal aborts', async () => {
    const rx = await receiver(() => undefined);
    const controller = new AbortController();
    const pending = deliverer(destination(rx.url)).deliver(message(), controller.signal);
    while (rx.received.length === 0) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    expect(await pending).toMatchObject({ outcome: 'retry', error: expect.stringMatching(/aborted/) });
  });

  it('sends the inlet.test message, signed like any other', async () => {
    const rx = await receiver(ok);
    const test = createTestMessage('app', Date.parse('2026-12-01T00:00:00Z'));
    expect(test.id).toMatch(/^msg_/);
    expect(await deliverer(destination(rx.url)).deliver(test, never)).toMatchObject({ outcome: 'delivered' });
    const body = verify(rx.received[0]!) as Record<string, unknown>;
    expect(body.type).toBe('inlet.test');
    expect(body.timestamp).toBe('2026-12-01T00:00:00.000Z');
    expect(body.data).toMatchObject({ destination: 'app' });
    expect(rx.received[0]!.headers['webhook-id']).toBe(test.id);
  });
});

describe('the private-network guard', () => {
  const guarded = (url: string, overrides: Record<string, unknown> = {}) =>
    destination(url, { allowPrivateNetwork: false, ...overrides });

  it('refuses a loopback IP literal with a clear error, sending nothing', async () => {
    const rx = await receiver(ok);
    const result = await deliverer(guarded(rx.url)).deliver(message(), never);
    expect(result).toMatchObject({
      outcome: 'retry',
      error: 'destination app: 127.0.0.1 is a loopback address; set allowPrivateNetwork to allow it',
    });
    expect(rx.received).toHaveLength(0);
  });

  it('refuses IPv4-mapped IPv6 literals of restricted addresses', async () => {
    const result = await deliverer(guarded('http://[::ffff:127.0.0.1]:9/')).deliver(message(), never);
    expect(result).toMatchObject({
      outcome: 'retry',
      error: 'destination app: ::ffff:7f00:1 is a loopback address; set allowPrivateNetwork to allow it',
    });
  });

  it('checks the resolved address at connect time, whatever the name', async () => {
    const rx = await receiver(ok);
    const lookups: string[] = [];
    const lookup: LookupFunction = (host, _options, callback) => {
      lookups.push(host);
      callback(null, [{ address: '127.0.0.1', family: 4 }]);
    };
    const url = `http://hooks.example.com:${rx.port}/hooks`;
    const result = await deliverer(guarded(url), { lookup }).deliver(message(), never);
    expect(result).toMatchObject({
      outcome: 'retry',
      error:
        'destination app: hooks.example.com resolves to 127.0.0.1, a loopback address; set allowPrivateNetwork to allow it',
    });
    expect(lookups).toEqual(['hooks.example.com']);
    expect(rx.received).toHaveLength(0);
  });

  it('re-checks the address of every new connection', async () => {
    const rx = await receiver((res) => res.writeHead(200, { connection: 'close' }).end());
    const answers = [[{ address: '10.0.0.1', family: 4 }], [{ address: '169.254.169.254', family: 4 }]];
    const lookup: LookupFunction = (_host, _options, callback) => {
      callback(null, answers.shift() ?? [{ address: '127.0.0.1', family: 4 }]);
    };
    const d = deliverer(guarded(`http://hooks.example.com:${rx.port}/hooks`), { lookup });
    expect(await d.deliver(message(), never)).toMatchObject({
      error: expect.stringContaining('resolves to 10.0.0.1, a private address'),
    });
    expect(await d.deliver(message(), never)).toMatchObject({
      error: expect.stringContaining('resolves to 169.254.169.254, a cloud metadata address'),
    });
    expect(rx.received).toHaveLength(0);
  });

  it('refuses a name that resolves to loopback with the real resolver', async () => {
    const rx = await receiver(ok);
    const result = await deliverer(guarded(`http://localhost:${rx.port}/`)).deliver(message(), never);
    expect(result.outcome).toBe('retry');
    expect(result.outcome === 'retry' && result.error).toMatch(
      /^destination app: localhost resolves to (127\.0\.0\.1|::1), a loopback address; set allowPrivateNetwork to allow it$/,
    );
    expect(rx.received).toHaveLength(0);
  });

  it('lets everything through with allowPrivateNetwork', async () => {
    const rx = await receiver(ok);
    const d = deliverer(destination(`http://localhost:${rx.port}/`, { allowPrivateNetwork: true }));
    expect(await d.deliver(message(), never)).toMatchObject({ outcome: 'delivered' });
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-11-27T13:38:07Z');
  it.each([
    ['0', 0],
    ['30', 30_000],
    [' 5 ', 5_000],
    ['Fri, 27 Nov 2026 13:38:37 GMT', 30_000],
    ['Fri, 27 Nov 2026 13:00:00 GMT', 0],
    ['-1', undefined],
    ['1.5', undefined],
    ['', undefined],
    ['later', undefined],
    [undefined, undefined],
  ])('%j → %j', (value, expected) => {
    expect(parseRetryAfter(value, now)).toBe(expected);
  });
});

describe('messageBody', () => {
  it('is {type, timestamp, data} with an RFC 3339 timestamp', () => {
    expect(
      JSON.parse(messageBody({ type: 'training.completed', recordedAtMs: 0, data: { id: 't' } })),
    ).toEqual({
      type: 'training.completed',
      timestamp: '1970-01-01T00:00:00.000Z',
      data: { id: 't' },
    });
  });

  it('writes data nested deeper than JSON.stringify can go', () => {
    const output = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
    const data = JSON.parse(`{"id":"p","output":${output}}`) as Record<string, unknown>;
    expect(messageBody({ type: 'prediction.completed', recordedAtMs: 0, data })).toBe(
      `{"type":"prediction.completed","timestamp":"1970-01-01T00:00:00.000Z","data":{"id":"p","output":${output}}}`,
    );
  });
});
