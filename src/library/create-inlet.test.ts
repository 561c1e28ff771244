import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../config.js';
import { openStore } from '../store/index.js';
import { signWebhook } from '../verify/index.js';
import { createInlet, type CreateInletOptions, type Inlet } from './create-inlet.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const OTHER = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function setup(options: Partial<CreateInletOptions> = {}): { inlet: Inlet; database: string } {
  const dir = mkdtempSync(join(tmpdir(), 'inlet-lib-'));
  const database = `sqlite:${join(dir, 'inlet.db')}`;
  const inlet = createInlet({ secret: SECRET, database, logger: pino({ level: 'silent' }), ...options });
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => inlet.close());
  return { inlet, database };
}

async function serve(listener: Inlet['listener']): Promise<string> {
  const server: Server = createServer(listener);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanups.push(() => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let n = 0;
function delivery(status = 'succeeded', id = `p${process.pid}x${++n}`, secret = SECRET) {
  const body = JSON.stringify({
    id,
    status,
    model: 'acme/echo',
    output: status === 'succeeded' ? ['x'] : null,
  });
  const headers = {
    'content-type': 'application/json',
    ...signWebhook(body, { secret, id: `msg_${id}_${status}`, timestampSec: Math.floor(Date.now() / 1000) }),
  };
  return { id, body, headers };
}

async function post(url: string, body: string, headers: Record<string, string>, method = 'POST') {
  const res = await fetch(url, { method, body: method === 'GET' ? undefined : body, headers });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

describe('createInlet: the Node listener', () => {
  it('verifies, stores and dedupes a signed delivery', async () => {
    const { inlet, database } = setup();
    const url = await serve(inlet.listener);
    await inlet.ready();
    const d = delivery();
    expect(await post(`${url}/hooks`, d.body, d.headers)).toMatchObject({
      status: 200,
      json: { received: true, duplicate: false },
    });
    expect(await post(`${url}/hooks`, d.body, d.headers)).toMatchObject({
      status: 200,
      json: { received: true, duplicate: true },
    });
    await inlet.close();
    const store = await openStore(database, { mode: 'read' });
    const folded = await store.getPrediction(d.id);
    await store.close();
    expect(folded).toMatchObject({ id: d.id, status: 'succeeded', eventCount: 1 });
  });

  it('answers the webhook errors of the server', async () => {
    const { inlet } = setup({ maxBodyBytes: 1000 });
    const url = await serve(inlet.listener);
    const bad = delivery('succeeded', undefined, OTHER);
    expect(await post(url, bad.body, bad.headers)).toMatchObject({
      status: 403,
      json: { error: { code: 'invalid_signature' } },
    });
    const unsigned = await post(url, delivery().body, { 'content-type': 'application/json' });
    expect(unsigned).toMatchObject({ status: 400, json: { error: { code: 'missing_signature' } } });
    const get = await post(url, '', {}, 'GET');
    expect(get).toMatchObject({ status: 405, json: { error: { code: 'method_not_allowed' } } });
    expect(get.headers.get('allow')).toBe('POST');
    const big = await post(url, 'x'.repeat(2000), { 'content-type': 'application/json' });
    expect(big).toMatchObject({ status: 413, json: { error: { code: 'payload_too_large' } } });
  });

  it('cuts off a chunked body larger than the limit', async () => {
    const { inlet } = setup({ maxBodyBytes: 1000 });
    const url = new URL(await serve(inlet.listener));
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.write('x'.repeat(800));
      req.write('x'.repeat(800));
    });
    expect(status).toBe(413);
  });

  it('serves only its path when given one', async () => {
    const { inlet } = setup({ path: '/replicate-webhook' });
    const url = await serve(inlet.listener);
    const d = delivery();
    expect((await post(`${url}/elsewhere`, d.body, d.headers)).status).toBe(404);
    expect((await post(`${url}/replicate-webhook/`, d.body, d.headers)).status).toBe(200);
  });

  it('takes a raw body a framework already read, and refuses a parsed one', async () => {
    const { inlet } = setup();
    const d = delivery();
    const raw = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        Object.assign(req, { body: Buffer.concat(chunks) });
        inlet.listener(req, res);
      });
    });
    expect(await post(raw, d.body, d.headers)).toMatchObject({ status: 200, json: { duplicate: false } });

    const errors: unknown[] = [];
    const parsed = await serve((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        Object.assign(req, { body: JSON.parse(Buffer.concat(chunks).toString()) });
        inlet.listener(req, res, (error) => {
          errors.push(error);
          res.writeHead(500).end('{}');
        });
      });
    });
    expect((await post(parsed, d.body, d.headers)).status).toBe(500);
    expect(String(errors[0])).toMatch(/raw request body.*mount inlet.listener before it/);
  });
});

describe('createInlet: the fetch handler', () => {
  const request = (body: string, headers: Record<string, string>, init: RequestInit = {}) =>
    new Request('http://app.local/api/replicate', { method: 'POST', body, headers, ...init });

  it('verifies, stores and dedupes a signed delivery', async () => {
    const { inlet } = setup();
    const d = delivery();
    const first = await inlet.fetch(request(d.body, d.headers));
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await first.json()).toEqual({ received: true, duplicate: false });
    expect(await (await inlet.fetch(request(d.body, d.headers))).json()).toEqual({
      received: true,
      duplicate: true,
    });
  });

  it('answers the webhook errors of the server', async () => {
    const { inlet } = setup({ maxBodyBytes: 1000, path: '/api/replicate' });
    const bad = delivery('succeeded', undefined, OTHER);
    expect((await inlet.fetch(request(bad.body, bad.headers))).status).toBe(403);
    const get = await inlet.fetch(new Request('http://app.local/api/replicate'));
    expect(get.status).toBe(405);
    expect(get.headers.get('allow')).toBe('POST');
    expect((await inlet.fetch(request('x'.repeat(2000), {}))).status).toBe(413);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('x'.repeat(800)));
        controller.enqueue(new TextEncoder().encode('x'.repeat(800)));
        controller.close();
      },
    });
    const chunked = await inlet.fetch(request('', {}, { body: stream, duplex: 'half' }));
    expect(chunked.status).toBe(413);
    const d = delivery();
    const elsewhere = new Request('http://app.local/other', {
      method: 'POST',
      body: d.body,
      headers: d.headers,
    });
    expect((await inlet.fetch(elsewhere)).status).toBe(404);
  });
});

describe('createInlet: options', () => {
  it('needs a secret unless verification is off', () => {
    expect(() => createInlet({ secret: undefined })).toThrow(ConfigError);
    expect(() => createInlet({ secret: undefined })).toThrow(/REPLICATE_WEBHOOK_SECRET/);
    expect(() => createInlet({ secret: 'not a secret' })).toThrow(/whsec_/);
  });

  it('accepts several secrets (rotation)', async () => {
    const { inlet } = setup({ secret: `${OTHER} ${SECRET}` });
    const d = delivery();
    expect(
      (await inlet.fetch(new Request('http://x/', { method: 'POST', body: d.body, headers: d.headers })))
        .status,
    ).toBe(200);
  });
});
