import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { PassThrough, Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestInlet, prediction, signedHeaders, type TestInlet } from '../../test/helpers.js';
import { InflightBytes, InflightLimitError, meterBody, readBodyWithin } from './inflight-bytes.js';

describe('InflightBytes', () => {
  it('refuses what would pass the limit and takes nothing then', () => {
    const budget = new InflightBytes(100);
    const a = budget.forRequest();
    expect(a.reserve(60)).toBe(true);
    const b = budget.forRequest();
    expect(b.reserve(50)).toBe(false);
    expect(budget.held).toBe(60);
    expect(b.reserve(40)).toBe(true);
    expect(budget.held).toBe(100);
  });

  it('gives a request’s share back once, however often it is released', () => {
    const budget = new InflightBytes(100);
    const a = budget.forRequest();
    a.reserve(30);
    a.reserve(20);
    a.releaseAll();
    a.releaseAll();
    expect(budget.held).toBe(0);
    // Released: nothing more can be taken in its name.
    expect(a.reserve(10)).toBe(false);
  });

  it('opens a request with its Content-Length taken, refuses one past the limit, and gives it back when the response closes', () => {
    const budget = new InflightBytes(100);
    const response = () => new EventEmitter() as unknown as ServerResponse;
    const first = response();
    expect(budget.openRequest({ 'content-length': '60' }, first, 1000)).toBeDefined();
    expect(budget.held).toBe(60);
    // Past the limit: nothing taken, the caller answers 503.
    expect(budget.openRequest({ 'content-length': '50' }, response(), 1000)).toBeUndefined();
    expect(budget.held).toBe(60);
    // Over --max-body (refused as 413 before any of it is kept), or of unknown length: nothing up front.
    expect(budget.openRequest({ 'content-length': '5000' }, response(), 1000)?.reserved).toBe(0);
    expect(budget.openRequest({ 'transfer-encoding': 'chunked' }, response(), 1000)?.reserved).toBe(0);
    first.emit('close');
    expect(budget.held).toBe(0);
  });

  it('meters a body of unknown length chunk by chunk, fails it at the limit and stops reading', async () => {
    const budget = new InflightBytes(10);
    const reservation = budget.forRequest();
    const source = new PassThrough();
    const metered = meterBody(source, reservation);
    const read = readBodyWithin(metered, reservation, { contentLength: undefined, maxBytes: 100 });
    source.write(Buffer.alloc(4));
    source.write(Buffer.alloc(4));
    source.write(Buffer.alloc(4));
    await expect(read).rejects.toBeInstanceOf(InflightLimitError);
    expect(budget.held).toBe(8);
    expect(source.isPaused()).toBe(true);
    reservation.releaseAll();
    expect(budget.held).toBe(0);
  });

  it('reserves the join of a chunked body too', async () => {
    const budget = new InflightBytes(100);
    const reservation = budget.forRequest();
    const source = Readable.from([Buffer.from('ab'), Buffer.from('cd')]);
    const body = await readBodyWithin(meterBody(source, reservation), reservation, {
      contentLength: undefined,
      maxBytes: 100,
    });
    expect(body.toString()).toBe('abcd');
    expect(budget.held).toBe(8);
  });

  it('reads a declared length into one buffer, and refuses a short or oversized body', async () => {
    const reservation = new InflightBytes(100).forRequest();
    const whole = await readBodyWithin(
      Readable.from([Buffer.from('{"a"'), Buffer.from(':1}')]),
      reservation,
      {
        contentLength: 7,
        maxBytes: 10,
      },
    );
    expect(whole.toString()).toBe('{"a":1}');
    await expect(
      readBodyWithin(Readable.from([Buffer.from('abc')]), reservation, { contentLength: 5, maxBytes: 10 }),
    ).rejects.toMatchObject({ statusCode: 400 });
    await expect(
      readBodyWithin(Readable.from([Buffer.from('abc')]), reservation, { contentLength: 11, maxBytes: 10 }),
    ).rejects.toMatchObject({ statusCode: 413 });
  });
});

describe('the app’s request body accounting', () => {
  let inlet: TestInlet | undefined;
  afterEach(async () => {
    await inlet?.close();
    inlet = undefined;
  });

  const held = async (target: TestInlet) => {
    const text = await target.metrics.text();
    return Number(/^inlet_inflight_body_bytes (\d+)/m.exec(text)?.[1]);
  };
  /** Resolves once `check` holds, polling the event loop (not a fixed sleep). */
  const until = async (check: () => Promise<boolean>) => {
    for (let i = 0; i < 500 && !(await check()); i++) await new Promise((r) => setTimeout(r, 10));
    expect(await check()).toBe(true);
  };

  // 900 bytes: two stalled senders hold 1800 of the 2000 allowed.
  const base = JSON.stringify(prediction({ id: 'pred_inflight', logs: '' })).length;
  const body = JSON.stringify(prediction({ id: 'pred_inflight', logs: 'x'.repeat(900 - base) }));
  const head = (length: number) =>
    `POST /replicate-webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
    Object.entries(signedHeaders(body))
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `content-length: ${length}\r\n\r\n`;
  const start = async () => {
    // --max-body 1000: the bound must be at least twice that.
    const started = await createTestInlet({ INLET_MAX_BODY_BYTES: '1000', INLET_MAX_INFLIGHT_BYTES: '2000' });
    inlet = started;
    await started.app.listen({ port: 0, host: '127.0.0.1' });
    return { current: started, port: (started.app.server.address() as { port: number }).port };
  };
  /** A sender that declares the whole body, sends part of it and stalls. */
  const stall = (port: number) => {
    const socket = connect(port, '127.0.0.1');
    socket.write(head(body.length) + body.slice(0, 400));
    return socket;
  };
  const deliver = (port: number) =>
    fetch(`http://127.0.0.1:${port}/replicate-webhook`, {
      method: 'POST',
      headers: { ...signedHeaders(body), 'content-type': 'application/json' },
      body,
    });

  it('holds a request’s Content-Length while its body arrives and gives it back when the sender goes away', async () => {
    const { current, port } = await start();
    // Stalled senders hold their whole declared length…
    const stalled = [stall(port), stall(port)];
    await until(async () => (await held(current)) === 2 * body.length);

    // …so a delivery that would pass the bound is answered 503 at once, without its body being read.
    const refused = await deliver(port);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.headers.get('connection')).toBe('close');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('storage_unavailable');

    // The stalled senders abort: their reservations are released, and the next delivery fits.
    for (const socket of stalled) socket.destroy();
    await until(async () => (await held(current)) === 0);
    expect((await deliver(port)).status).toBe(200);
    await until(async () => (await held(current)) === 0);
    expect(await current.metrics.text()).toMatch(/^inlet_inflight_refused_total 1$/m);
  });

  it('gives a reservation back when the request times out', async () => {
    const started = await createTestInlet({
      INLET_MAX_BODY_BYTES: '1000',
      INLET_MAX_INFLIGHT_BYTES: '2000',
      INLET_REQUEST_TIMEOUT_MS: '300',
    });
    inlet = started;
    await started.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (started.app.server.address() as { port: number }).port;
    const socket = stall(port);
    const closed = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    await until(async () => (await held(started)) === body.length);
    // Cut off by --request-timeout-ms (408): the reservation goes with it.
    expect(await closed).toMatch(/^HTTP\/1.1 408/);
    await until(async () => (await held(started)) === 0);
  });

  it('counts a chunked body as it arrives and refuses it, with a 503, once it would pass the bound', async () => {
    const { current, port } = await start();
    const stalled = [stall(port), stall(port)];
    await until(async () => (await held(current)) === 2 * body.length);
    const socket = connect(port, '127.0.0.1');
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => (text += d.toString()));
      socket.on('close', () => resolve(text));
    });
    socket.write(
      'POST /replicate-webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n',
    );
    // 150 bytes in: held. Another 150 pass the bound (well within --max-body).
    const left = 2000 - 2 * body.length;
    socket.write(`96\r\n${'a'.repeat(150)}\r\n`);
    await until(async () => (await held(current)) === 2 * body.length + 150);
    expect(left).toBeGreaterThan(150);
    expect(left).toBeLessThan(300);
    socket.write(`96\r\n${'a'.repeat(150)}\r\n`);
    const text = await answer;
    expect(text).toMatch(/^HTTP\/1.1 503/);
    expect(text.toLowerCase()).toContain('retry-after: 2');
    for (const s of stalled) s.destroy();
    await until(async () => (await held(current)) === 0);
  });
});
